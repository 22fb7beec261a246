"""Response accuracy of a stable-baselines3 model, by delay, in the project's result format."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor

from agents.evaluate import DelayAccuracy
from agents.rl.vec_env import make_sb3_vec_env
from memenv.config import N_LABELS
from memenv.errors import UsageError


def observation_normalizer(model: Any, normalize: Any) -> Any:
    """The observation normaliser an evaluation applies: ``normalize`` itself, the model's own
    (``model.get_vec_normalize_env()``) for None, none for False.

    Raises:
        UsageError: ``normalize`` has no ``normalize_obs`` method.
    """
    if normalize is False:
        return None
    if normalize is None:
        getter = getattr(model, "get_vec_normalize_env", None)
        return getter() if callable(getter) else None
    if isinstance(normalize, bool) or not callable(getattr(normalize, "normalize_obs", None)):
        raise UsageError(
            "normalize must be None (the model's own VecNormalize, if any), False (raw "
            "observations) or a VecNormalize (anything with normalize_obs), got "
            f"{normalize!r} ({type(normalize).__name__})"
        )
    return normalize


def _unwrap(envs: Any, normalize: Any) -> tuple[Any, Any]:
    """The `SB3VecEnv` under ``envs`` and the normaliser to apply.

    A VecNormalize (any wrapper with ``normalize_obs``) around the env is not stepped: its
    statistics would move and its rewards would be normalised; the evaluation steps the env
    under it and normalises the observations with the wrapper's statistics, frozen. Wrappers
    that change observations otherwise are refused (the evaluation could not apply them).
    """
    found = []
    base = envs
    while isinstance(base, VecEnvWrapper):
        if callable(getattr(type(base), "normalize_obs", None)):
            found.append(base)
        elif not isinstance(base, VecMonitor):
            raise UsageError(
                f"run_sb3_episodes steps the SB3VecEnv itself and cannot apply "
                f"{type(base).__name__}; pass the SB3VecEnv (and normalize=... for a "
                "VecNormalize)"
            )
        base = base.venv
    if len(found) > 1:
        raise UsageError(
            f"envs holds {len(found)} observation normalisers "
            f"({', '.join(type(w).__name__ for w in found)}); pass at most one"
        )
    if normalize is None and found:
        normalize = found[0]
    return base, normalize


def run_sb3_episodes(
    model: Any,
    envs: Any,
    n_episodes: int,
    seed: int = 0,
    deterministic: bool = True,
    normalize: Any = None,
) -> dict[str, np.ndarray]:
    """Runs ``model`` (PPO, RecurrentPPO, or anything with SB3's ``predict``) on an `SB3VecEnv`.

    The recurrent state returned by ``predict`` is passed back in, with ``episode_start``
    true on the first observation of every episode, exactly as SB3's own ``evaluate_policy``
    does. Episodes are kept whole and in sub-env order when they end, so which episodes count
    does not depend on how long they lasted.

    A model trained on normalised observations (SB3's ``VecNormalize``) is shown normalised
    observations, ``normalize.normalize_obs(obs)``, with the statistics frozen, as SB3
    evaluates (``training=False``, ``norm_reward=False``): nothing here updates them, and
    episodes are graded by the env's own rewards.

    Args:
        model: The agent.
        envs: An `SB3VecEnv` with ``null_penalty = 0`` (episodes are graded by the reward at
            the response step), or a ``VecNormalize`` (or ``VecMonitor``) around one: the env
            under it is stepped, and a VecNormalize's statistics are used as ``normalize``.
        n_episodes: Finished episodes to return (>= 1).
        seed: Seeds the envs (``envs.seed(seed)``, then ``reset()``).
        deterministic: Passed to ``predict`` (True: the argmax action).
        normalize: The observation normaliser the model was trained with: a ``VecNormalize``
            (or anything with ``normalize_obs``); None: the VecNormalize around ``envs`` or the
            model's own (``model.get_vec_normalize_env()``), if any; False: raw observations.

    Returns:
        Arrays over the episodes: ``label``, ``t_stim``, ``t_resp`` and ``correct`` (the
        reward at the response step was 1).
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise UsageError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    envs, normalize = _unwrap(envs, normalize)
    normalizer = observation_normalizer(model, normalize)
    _check_normalizer(normalizer, envs)
    if envs.get_attr("null_penalty")[0] != 0:
        raise UsageError("grading by reward needs null_penalty=0")
    envs.seed(seed)
    obs = envs.reset()
    infos = list(envs.reset_infos)
    state = None
    episode_start = np.ones(envs.num_envs, dtype=bool)
    pending: list[tuple[int, int, int, bool] | None] = [None] * envs.num_envs
    finished: list[tuple[int, int, int, bool]] = []
    while len(finished) < n_episodes:
        seen = obs if normalizer is None else normalizer.normalize_obs(obs)
        actions, state = model.predict(
            seen, state=state, episode_start=episode_start, deterministic=deterministic
        )
        obs, rewards, dones, step_infos = envs.step(actions)
        for i, info in enumerate(infos):
            if info["is_response"]:
                correct = bool(rewards[i] == 1.0)
                pending[i] = (info["label"], info["t_stim"], info["t_resp"], correct)
        for i in np.flatnonzero(dones):
            if pending[i] is None:
                raise RuntimeError(f"sub-env {i} ended an episode without a response step")
            if len(finished) < n_episodes:
                finished.append(pending[i])
            pending[i] = None
        infos = [envs.reset_infos[i] if dones[i] else step_infos[i] for i in range(envs.num_envs)]
        episode_start = dones
    columns = list(zip(*finished, strict=True))
    return {
        "label": np.asarray(columns[0], dtype=np.int64),
        "t_stim": np.asarray(columns[1], dtype=np.int64),
        "t_resp": np.asarray(columns[2], dtype=np.int64),
        "correct": np.asarray(columns[3], dtype=bool),
    }


def _check_normalizer(normalizer: Any, envs: Any) -> None:
    space = getattr(normalizer, "observation_space", None)
    shape = getattr(space, "shape", None)
    if shape is not None and shape != envs.observation_space.shape:
        raise UsageError(
            f"normalize holds statistics of observations of shape {shape}, but the env's "
            f"observations have shape {envs.observation_space.shape}"
        )


def evaluate_sb3_delays(
    model: Any,
    delays: tuple[int, ...] | list[int],
    *,
    env_id: str = "DelayedRecall-MNIST-v0",
    n_trials: int = 200,
    num_envs: int = 50,
    n_classes: int = N_LABELS,
    split: str = "test",
    seed: int = 0,
    normalize: Any = None,
    **env_kwargs: Any,
) -> DelayAccuracy:
    """Accuracy at each fixed delay, as `agents.evaluate.DelayAccuracy` (one member).

    For each delay ``d`` it runs ``n_trials`` episodes of ``d + 1`` steps (stimulus at
    ``t = 0``, trigger at ``t = d``) through the registered env, with `run_sb3_episodes`:
    what the agent does when it acts in the Gymnasium env, graded by the env's reward. The
    result has the same fields, intervals, ``markdown()`` and ``save()`` as the supervised
    `agents.evaluate.evaluate_delays`, so SB3 and PyTorch agents can be compared directly.

    Args:
        model: The agent (anything with SB3's ``predict``).
        delays: Positive delays (response step minus stimulus step).
        env_id: Registered env id.
        n_trials: Episodes per delay.
        num_envs: Sub-envs of each delay's `SB3VecEnv` (at most ``n_trials`` are used).
        n_classes: Vocabulary (the first ``n_classes`` classes).
        split: Image split (``"test"``: held-out images).
        seed: Delay ``j`` seeds its envs with ``seed + j``.
        normalize: For a model trained on a ``VecNormalize``: that VecNormalize (or anything
            with ``normalize_obs``). The policy then sees ``normalize.normalize_obs(obs)``,
            with the statistics frozen (as SB3 evaluates: ``training=False``,
            ``norm_reward=False``; nothing here changes them). None (default): the model's
            own, ``model.get_vec_normalize_env()``, if it has one; False: raw observations.
        **env_kwargs: More env arguments (``root``, ``noise_scale``, ...).

    Returns:
        The accuracy per delay, with per-class counts; ``meta`` says how it was measured.
    """
    delays = [int(d) for d in delays]
    if not delays or min(delays) < 1:
        raise UsageError(f"delays must be positive integers, got {delays!r}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise UsageError(f"n_trials must be a positive integer, got {n_trials!r}")
    normalizer = observation_normalizer(model, normalize)
    correct = np.zeros((1, len(delays)), dtype=np.int64)
    class_correct = np.zeros((1, len(delays), N_LABELS), dtype=np.int64)
    class_trials = np.zeros((len(delays), N_LABELS), dtype=np.int64)
    data_source = None
    for j, delay in enumerate(delays):
        envs = make_sb3_vec_env(
            env_id,
            min(num_envs, n_trials),
            delay=delay,
            t_stim=0,
            n_steps=delay + 1,
            t_max=delay + 1,
            min_delay=min(4, delay),
            n_classes=n_classes,
            split=split,
            **env_kwargs,
        )
        data_source = envs.get_attr("data_source")[0]
        result = run_sb3_episodes(
            model,
            envs,
            n_trials,
            seed=seed + j,
            normalize=normalizer if normalizer is not None else False,
        )
        envs.close()
        correct[0, j] = result["correct"].sum()
        np.add.at(class_trials[j], result["label"], 1)
        np.add.at(class_correct[0, j], result["label"], result["correct"].astype(np.int64))
    return DelayAccuracy(
        delays=np.asarray(delays),
        n_trials=np.full(len(delays), n_trials),
        correct=correct,
        class_trials=class_trials,
        class_correct=class_correct,
        meta={
            "env_id": env_id,
            "split": split,
            "n_classes": n_classes,
            "t_stim": 0,
            "seed": seed,
            "agent": type(model).__name__,
            "data_source": data_source,
            "normalize": None if normalizer is None else type(normalizer).__name__,
        },
    )
