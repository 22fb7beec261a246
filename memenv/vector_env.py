"""`DelayedRecallVectorEnv`: B delayed-recall trials stepped as arrays, with no per-env objects."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from memenv.config import TaskConfig, check_bytes, short_repr
from memenv.data import FRAME_SHAPES
from memenv.env import (
    ENV_ARGUMENTS,
    FRAME_CHUNK,
    N_ACTIONS,
    RENDER_SCALE,
    SEED_RULE,
    TrialView,
    check_action,
    check_null_penalty,
    check_render_mode,
    check_render_scale,
    check_seed,
    make_config,
    make_task,
    observation_space,
    stimulus_obs,
    trial_image,
)
from memenv.errors import UsageError
from memenv.task import GAUSSIAN_BLOCK_BYTES, NOISE_THREADS, TrialSpec, trial_uniforms

INFO_KEYS = ("t", "target", "is_response", "loss_weight", "t_stim", "t_resp", "label")

AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}

# Bytes per sub-env, for the up-front memory check (measured with tracemalloc; the test
# `test_vector_env_memory_estimate_bounds_what_it_allocates` keeps them honest):
SPACE_BYTES_PER_VALUE = 20
"""The batched observation space: float32 low and high, their bool masks, and the
temporaries of building them (measured: 19 bytes per observation value)."""
ENV_OVERHEAD_BYTES = 2048
"""A sub-env's generator and its share of the info arrays (measured: about 1.5 KB)."""
FIXED_BYTES = 2 * NOISE_THREADS * GAUSSIAN_BLOCK_BYTES
"""Whatever the number of sub-envs: the uniforms each noise thread transforms at a time
(`memenv.task.gaussian_fill_rows`), with room to spare."""


def vector_env_bytes(num_envs: int, obs_dim: int, n_steps: int) -> int:
    """What a `DelayedRecallVectorEnv` allocates at most, in bytes.

    Per sub-env: the batched observation space, one frame chunk of ``min(n_steps,
    FRAME_CHUNK)`` float32 frames with their int64 targets and float32 loss weights, the
    observations returned (and ``final_obs``), and a fixed overhead; plus `FIXED_BYTES`.
    """
    window = min(n_steps, FRAME_CHUNK)
    per_env = (
        SPACE_BYTES_PER_VALUE * obs_dim
        + window * (4 * obs_dim + 8 + 4)
        + 2 * 4 * obs_dim
        + ENV_OVERHEAD_BYTES
    )
    return num_envs * per_env + FIXED_BYTES


def check_num_envs(num_envs: Any) -> int:
    if isinstance(num_envs, bool | np.bool_) or not isinstance(num_envs, numbers.Integral):
        raise UsageError(
            f"num_envs must be a positive integer, got {num_envs!r} ({type(num_envs).__name__})"
        )
    if num_envs < 1:
        raise UsageError(f"num_envs must be a positive integer, got {num_envs!r}")
    return int(num_envs)


def check_autoreset_mode(autoreset_mode: Any) -> AutoresetMode:
    if isinstance(autoreset_mode, AutoresetMode) and autoreset_mode in AUTORESET_MODES.values():
        return autoreset_mode
    if isinstance(autoreset_mode, str) and autoreset_mode in AUTORESET_MODES:
        return AUTORESET_MODES[autoreset_mode]
    raise UsageError(f"autoreset_mode must be 'next_step' or 'same_step', got {autoreset_mode!r}")


def check_memory(num_envs: int, config: TaskConfig) -> None:
    """Refuses, before any buffer exists, a vector env over `memenv.config.max_bytes`."""
    obs_dim = 1 + math.prod(FRAME_SHAPES[config.dataset])
    check_bytes(
        vector_env_bytes(num_envs, obs_dim, config.n_steps),
        f"a vector env of num_envs={num_envs} (obs_dim={obs_dim}, n_steps={config.n_steps})",
    )


def check_actions(actions: Any, num_envs: int) -> np.ndarray:
    """``actions`` as an integer array ``[num_envs]`` in ``[0, N_ACTIONS)``.

    The single env's rule (`memenv.env.check_action`) element-wise: an array (or anything
    numpy turns into one, such as a CPU tensor) of any integer dtype, signed or unsigned, or a
    list or tuple whose items the single env would accept. Bool and float arrays are refused,
    even when they hold whole numbers. Every refusal is a `UsageError`.
    """
    if isinstance(actions, list | tuple):
        if len(actions) != num_envs:
            raise UsageError(
                f"actions must hold {num_envs} integers (one per sub-env), got {len(actions)}: "
                f"{short_repr(actions)}"
            )
        return np.array([check_action(a, f"actions[{i}]") for i, a in enumerate(actions)])
    array = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
    if array.dtype.kind not in "iu":
        raise UsageError(
            f"actions must be an integer array of shape ({num_envs},), got "
            f"{short_repr(actions)} ({type(actions).__name__} of dtype {array.dtype})"
        )
    if array.shape != (num_envs,):
        raise UsageError(
            f"actions must be an integer array of shape ({num_envs},), got shape "
            f"{array.shape}: {short_repr(actions)}"
        )
    bad = np.flatnonzero((array < 0) | (array >= N_ACTIONS))
    if bad.size:
        i = int(bad[0])
        raise UsageError(
            f"actions[{i}] must be an integer in [0, {N_ACTIONS - 1}], got {int(array[i])} "
            f"({bad.size} of {num_envs} actions out of range)"
        )
    return array


class DelayedRecallVectorEnv(VectorEnv):
    """``num_envs`` delayed-recall trials advanced together as arrays.

    The batched twin of `memenv.env.DelayedRecallEnv` (same spaces per sub-env, rewards,
    episode end and info keys; see its docstring for the task). ``gym.make_vec(id,
    num_envs=B)`` returns this class through the registered ``vector_entry_point``.

    Sub-env ``i`` draws from its own generator, seeded ``seed + i`` by ``reset(seed=seed)``
    (or ``seed[i]`` for a list), in the same order as a single env: so sub-env ``i`` reproduces
    ``DelayedRecallEnv`` reset with seed ``seed + i``, observation for observation, as
    Gymnasium's ``SyncVectorEnv`` would.

    All episodes have ``n_steps`` steps, so the sub-envs stay in lockstep and end together.

    ## Actions
    An integer array of shape ``[num_envs]`` (any integer dtype, signed or unsigned) with
    values in ``[0, 10]``, or a list or tuple of ``num_envs`` actions that the single env
    accepts: the single env's rule (`memenv.env.check_action`) element-wise. Bool and float
    arrays (even of whole numbers), other shapes, strings and None raise
    `memenv.errors.UsageError` (a ValueError) naming the first bad action. Actions are checked
    on every step, including the next-step autoreset step that ignores them.

    ## Reset
    ``seed`` is None, a non-negative integer (sub-env ``i`` gets ``seed + i``) or a list or
    tuple of ``num_envs`` such seeds or Nones; ``options`` is None or a dict of per-episode
    `TaskConfig` fields. Both are checked, with the single env's wording, before anything
    changes.

    ## Memory
    The env computes what it will allocate (`vector_env_bytes`: about 225 KB per MNIST
    sub-env with ``n_steps >= 64``, 87 KB at the paper's 20 steps) before allocating, and
    refuses with a `memenv.errors.UsageError` naming ``num_envs``, the bytes and the limit
    when that exceeds 4 GiB (`memenv.config.DEFAULT_MAX_BYTES`; set the environment variable
    ``MEMENV_MAX_BYTES`` to change it). Reset options that lengthen the episodes are checked
    the same way.

    ## Autoreset
    ``autoreset_mode="next_step"`` (default, Gymnasium's convention): the step after a
    terminal step resets every sub-env, ignores the actions and returns rewards 0.
    ``"same_step"``: the terminal step returns the first observation of the next episodes,
    with the terminal observations in ``info["final_obs"]`` and their infos in
    ``info["final_info"]`` (what stable-baselines3 expects).

    ## Info
    Arrays of shape ``[num_envs]`` for ``t``, ``target``, ``is_response``, ``loss_weight``,
    ``t_stim``, ``t_resp``, ``label`` (and ``reward_step`` on steps), each with its
    Gymnasium ``_key`` mask. ``loss_weight`` is the single env's: ``null_weight`` at null
    steps before ``t_max``, ``19 + null_weight`` at ``t_resp``, 0 from ``t_max`` on (1 and 20
    with the default ``null_weight=1.0``). ``null_weight`` (the ReCu curriculum's setting)
    changes only this reported weight, never the rewards.

    ## Arguments
    ``num_envs`` (a positive integer of any integer type) and ``autoreset_mode`` plus every
    argument of `DelayedRecallEnv`, checked up front in the same way (`UsageError` for a bad
    value, `ArgumentTypeError` for an unknown keyword or a bad ``root`` / ``download`` type).
    ``reset(options=...)`` applies per-episode `TaskConfig` fields to all sub-envs;
    `set_next_episode_options` schedules them for the next episode start (autoreset
    included), which is how curricula change the task between episodes.

    ## Rendering
    With ``render_mode="rgb_array"``, ``render()`` returns a tuple of ``num_envs`` images, sub-env
    ``i``'s equal to what `DelayedRecallEnv.render` shows for the single env that sub-env ``i``
    reproduces (the frame upscaled ``render_scale`` times, default 8, over a status strip with
    t, the trigger, the label and the last action; after the last step, in next-step autoreset,
    the stimulus image with the answer and RIGHT or WRONG). With ``"same_step"`` autoreset the
    terminal step already shows the next episodes' first frames.

    ## Version History
    * v0: initial version. Later hardening changed no valid episode: list actions holding
      bools are refused, as the single env refuses bools; seeds, options, keyword arguments
      and the memory the env needs are checked up front.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    render_scale: int = RENDER_SCALE
    """Upscaling of rendered frames (as `DelayedRecallEnv.render_scale`)."""

    def __init__(
        self,
        num_envs: int = 1,
        dataset: str = "mnist",
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        null_penalty: float = 0.0,
        root: str | os.PathLike | None = None,
        download: bool = False,
        **task_kwargs: Any,
    ) -> None:
        # Every argument is checked, and the memory computed, before anything is allocated.
        num_envs = check_num_envs(num_envs)
        mode = check_autoreset_mode(autoreset_mode)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.null_penalty = check_null_penalty(null_penalty)
        config = make_config(dataset, task_kwargs, ("num_envs", "autoreset_mode") + ENV_ARGUMENTS)
        check_memory(num_envs, config)
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.task = make_task(config, root, download)
        self.num_envs = num_envs
        self.single_observation_space = observation_space(self.task)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._pending: dict[str, Any] = {}
        self._spec: TrialSpec | None = None
        self._frames: np.ndarray | None = None  # [B, W, D] for steps [start, start + W)
        self._targets: np.ndarray | None = None  # [B, W] int64, the same steps
        self._weights: np.ndarray | None = None  # [B, W] float32, the same steps
        self._frames_start = -1
        self._t = 0
        self._needs_reset = True
        self._all = np.ones(num_envs, dtype=bool)
        self._last_actions: np.ndarray | None = None  # for render()
        self._answers = np.full(num_envs, -1, dtype=np.int64)

    @property
    def config(self) -> TaskConfig:
        """The `TaskConfig` of the current episodes."""
        return self.task.config

    @property
    def data_source(self) -> str:
        return self.task.images.source

    def set_next_episode_options(self, options: Mapping[str, Any] | None) -> None:
        """Validates ``options`` now and applies them when the next episodes start.

        Raises:
            UsageError: as ``reset(options=...)`` does, or longer episodes than memory allows.
        """
        self.config.with_episode_options(options)  # the message names these options alone
        merged = {**self._pending, **(options or {})}
        config = self.config.with_episode_options(merged)
        if config.n_steps != self.config.n_steps:
            check_memory(self.num_envs, config)
        self._pending = merged

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds = self._check_seeds(seed)  # before the options change anything
        self.set_next_episode_options(options)
        if seed is not None or self._rngs is None:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self._np_random = self._rngs[0]
        self._start_episodes()
        return self._observation(), self._info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self._spec is None:
            raise RuntimeError("call reset() before step()")
        actions = check_actions(actions, self.num_envs)
        if self._needs_reset:  # next-step autoreset: this step only starts new episodes
            self._start_episodes()
            zeros = np.zeros(self.num_envs, dtype=bool)
            return self._observation(), np.zeros(self.num_envs), zeros, zeros.copy(), self._info()
        rewards = self._rewards(actions)
        self._last_actions = actions.astype(np.int64)
        at_resp = self._spec.t_resp == self._t
        self._answers[at_resp] = actions[at_resp]
        graded = self._t
        self._t += 1
        terminated = self._t >= self.config.n_steps
        terminations = np.full(self.num_envs, terminated)
        truncations = np.zeros(self.num_envs, dtype=bool)
        info = self._info()
        info["reward_step"], info["_reward_step"] = np.full(self.num_envs, graded), self._all
        if not terminated:
            return self._observation(), rewards, terminations, truncations, info
        final_obs = np.zeros((self.num_envs, self.task.obs_dim), dtype=np.float32)
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            self._needs_reset = True
            return final_obs, rewards, terminations, truncations, info
        final_info = info
        self._start_episodes()
        info = self._info()
        info["final_obs"] = np.empty(self.num_envs, dtype=object)
        for i, obs in enumerate(final_obs):
            info["final_obs"][i] = obs
        info["final_info"] = final_info
        info["_final_obs"] = info["_final_info"] = self._all
        return self._observation(), rewards, terminations, truncations, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            return None
        scale = check_render_scale(self.render_scale)
        frame_shape = self.task.images.frame_shape
        spec = self._spec
        if spec is None:
            return tuple(trial_image(frame_shape, scale, None) for _ in range(self.num_envs))
        t = self.config.n_steps if self._needs_reset else self._t
        frames = None if self._needs_reset else self._observation()
        images = []
        for i in range(self.num_envs):
            view = TrialView(
                t=t,
                n_steps=self.config.n_steps,
                t_stim=int(spec.t_stim[i]),
                t_resp=int(spec.t_resp[i]),
                label=int(spec.label[i]),
                last_action=None if self._last_actions is None else int(self._last_actions[i]),
                answer=None if self._answers[i] < 0 else int(self._answers[i]),
            )
            obs = stimulus_obs(self.task, int(spec.image_index[i])) if frames is None else frames[i]
            images.append(trial_image(frame_shape, scale, view, obs))
        return tuple(images)

    # ---------------------------------------------------------------------------- internals
    def _check_seeds(self, seed: Any) -> list[int | None]:
        """One seed per sub-env, worded as the single env words a bad seed."""
        if isinstance(seed, list | tuple):
            if len(seed) != self.num_envs:
                raise UsageError(
                    f"seed must be {SEED_RULE}, or a list of {self.num_envs} seeds (one per "
                    f"sub-env); got a list of {len(seed)}: {short_repr(seed)}"
                )
            return [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]
        first = check_seed(seed)
        if first is None:
            return [None] * self.num_envs
        return [first + i for i in range(self.num_envs)]

    def _start_episodes(self) -> None:
        if self._pending:
            config = self.config.with_episode_options(self._pending)
            self._pending = {}
            if config != self.config:
                self.task = self.task.with_config(config)
        # Each sub-env draws what a single env's reset would draw, from its own generator.
        uniforms = np.concatenate([trial_uniforms(1, rng) for rng in self._rngs], axis=1)
        self._spec = self.task.spec_from_uniforms(uniforms)
        self._t = 0
        self._frames = None
        self._frames_start = -1
        self._needs_reset = False
        self._last_actions = None
        self._answers[:] = -1

    def _rewards(self, actions: np.ndarray) -> np.ndarray:
        spec = self._spec
        at_resp = spec.t_resp == self._t
        correct = actions == spec.label + 1
        rewards = (at_resp & correct).astype(np.float64)
        if self.null_penalty:
            rewards -= self.null_penalty * (~at_resp & (actions != 0))
        return rewards

    def _observation(self) -> np.ndarray:
        column = self._chunk_column()
        return self._frames[:, column].copy()

    def _chunk_column(self) -> int:
        """Where step ``self._t`` sits in the frame chunk, drawn first if need be."""
        chunk_start = self._t - self._t % FRAME_CHUNK
        if self._frames is None or self._frames_start != chunk_start:
            self._draw_chunk(chunk_start, min(chunk_start + FRAME_CHUNK, self.config.n_steps))
        return self._t - chunk_start

    def _draw_chunk(self, start: int, stop: int) -> None:
        """Frames, targets and loss weights of steps ``[start, stop)`` for every sub-env."""
        self._frames = None  # the old chunk goes first: one chunk in memory, not two
        frames = np.empty((self.num_envs, stop - start, self.task.obs_dim), np.float32)
        self.task.noise_rows(self._rngs, frames.reshape(self.num_envs, -1))
        self.task.place(frames, self._spec, start)
        self._frames, self._frames_start = frames, start
        self._targets, self._weights = self.task.targets(self._spec, start, stop)

    def _info(self) -> dict[str, Any]:
        spec, t = self._spec, self._t
        if t < self.config.n_steps:
            column = self._chunk_column()
            target, weight = self._targets[:, column].copy(), self._weights[:, column].copy()
        else:
            target = np.zeros(self.num_envs, np.int64)
            weight = np.zeros(self.num_envs, np.float32)
        values = {
            "t": np.full(self.num_envs, t),
            "target": target,
            "is_response": spec.t_resp == t,
            "loss_weight": weight,
            "t_stim": spec.t_stim.copy(),
            "t_resp": spec.t_resp.copy(),
            "label": spec.label.copy(),
        }
        info: dict[str, Any] = {}
        for key, value in values.items():
            info[key], info[f"_{key}"] = value, self._all
        return info
