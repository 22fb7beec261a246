"""A trained model acting in the Gymnasium environments.

`RecurrentPolicy` turns any `RecurrentAgent` into a stateful policy: it carries the recurrent
state from step to step, resets it where an episode starts, and answers with the masked argmax
of the readout (action 0 = null, k = class k - 1). `run_vector_episodes` drives a vector env
(``gym.make_vec(...)``) with it and handles Gymnasium's autoreset conventions.

Example::

    envs = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=64, split="test")
    stats = run_vector_episodes(envs, RecurrentPolicy(model), n_episodes=640, seed=0)
    stats["accuracy"]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.evaluate import _model_device, wilson_interval
from agents.loss import predictions
from agents.protocol import State, check_agent, map_state


class RecurrentPolicy:
    """A stateful policy around a `RecurrentAgent`.

    Args:
        model: The trained model (put in eval mode; not copied).
        n_classes: Active vocabulary: answers outside it are never chosen.
        device: Where to run; None: the model's device.
    """

    def __init__(self, model: torch.nn.Module, n_classes: int = 10, device: Any = None) -> None:
        check_agent(model)
        self.model = model.eval()
        self.n_classes = int(n_classes)
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.state: State | None = None
        self.n_envs = 0

    def reset(self, n_envs: int = 1) -> None:
        """Starts ``n_envs`` fresh episodes (initial state everywhere)."""
        with torch.no_grad():
            self.state = self.model.initial_state(n_envs)
        self.n_envs = n_envs

    def act(self, obs: Any, episode_start: Any = None) -> np.ndarray | int:
        """One step: observe ``obs`` and answer.

        Args:
            obs: ``[N, D]`` (vector env) or ``[D]`` (single env) observations.
            episode_start: bool ``[N]``: rows whose ``obs`` is the first frame of a new episode
                (their state is reset first). None: no row starts.

        Returns:
            int64 actions ``[N]``, or an int for a ``[D]`` observation.
        """
        single = np.ndim(obs) == 1
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        if single:
            x = x[None]
        n = x.shape[0]
        with torch.no_grad():
            if self.state is None or self.n_envs != n:
                self.reset(n)
            elif episode_start is not None:
                start = torch.as_tensor(np.asarray(episode_start, dtype=bool), device=self.device)
                if bool(start.any()):
                    fresh = self.model.initial_state(n)
                    self.state = _where_rows(start, fresh, self.state)
            self.state = self.model.transition(self.state, x)
            logits = self.model.readout(self.state)
            actions = predictions(logits, self.n_classes).cpu().numpy()
        return int(actions[0]) if single else actions


def _where_rows(rows: torch.Tensor, fresh: State, old: State) -> State:
    if isinstance(old, torch.Tensor):
        return torch.where(rows[:, None], fresh, old)
    return tuple(torch.where(rows[:, None], f, o) for f, o in zip(fresh, old, strict=True))


def run_vector_episodes(
    envs: Any, policy: RecurrentPolicy, n_episodes: int, seed: int | None = None
) -> dict[str, Any]:
    """Plays whole episodes in a vector env and measures retrieval accuracy.

    Works with both autoreset modes (``next_step``: the step after a terminal step only
    resets; ``same_step``: the terminal step already returns the next episode's first frame).

    Args:
        envs: A Gymnasium vector env of the delayed-recall task (``gym.make_vec``).
        policy: The policy.
        n_episodes: Episodes to finish (rounded up to whole batches of ``num_envs``).
        seed: Passed to ``envs.reset``.

    Returns:
        ``{"accuracy", "correct", "n_episodes", "ci95", "rewards"}``; ``rewards`` is the
        float array ``[n_episodes]`` of the rewards at the response steps (1.0 correct, else
        0.0), in the order the episodes ended. Trial facts come from ``info["t_resp"]``.
    """
    from gymnasium.vector import AutoresetMode

    n = envs.num_envs
    same_step = envs.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=seed)
    policy.reset(n)
    t_resp = np.asarray(info["t_resp"]).copy()
    t_local = np.zeros(n, dtype=np.int64)  # the step the next action is graded at
    start = np.ones(n, dtype=bool)
    resetting = np.zeros(n, dtype=bool)  # next_step mode: this step only resets
    finished = np.zeros(n, dtype=np.int64)
    response_reward = np.zeros(n)
    rewards: list[float] = []
    target = -(-n_episodes // n)
    while finished.min() < target:
        actions = policy.act(obs, episode_start=start)
        obs, reward, terminated, truncated, info = envs.step(actions)
        graded = ~resetting
        at_resp = graded & (t_local == t_resp)
        response_reward[at_resp] = np.asarray(reward)[at_resp]
        t_local[graded] += 1
        done = (terminated | truncated) & graded
        for i in np.flatnonzero(done):
            if finished[i] < target:
                rewards.append(float(response_reward[i]))
            finished[i] += 1
        new_episode = done if same_step else resetting  # rows whose obs is a first frame
        t_resp[new_episode] = np.asarray(info["t_resp"])[new_episode]
        t_local[new_episode] = 0
        response_reward[new_episode] = 0.0
        start = new_episode
        if not same_step:
            resetting = done
    correct = int(np.sum(np.asarray(rewards) > 0.5))
    low, high = wilson_interval(correct, len(rewards))
    return {
        "accuracy": correct / len(rewards),
        "correct": correct,
        "n_episodes": len(rewards),
        "ci95": [float(low), float(high)],
        "rewards": np.asarray(rewards),
    }


def map_policy_state(policy: RecurrentPolicy, fn) -> None:
    """Applies ``fn`` to every tensor of the policy's state (e.g. to inspect or perturb it)."""
    if policy.state is not None:
        policy.state = map_state(policy.state, fn)
