"""`DelayedRecallVectorEnv`: B delayed-recall trials stepped as arrays, with no per-env objects."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from memenv.config import TaskConfig
from memenv.env import (
    FRAME_CHUNK,
    N_ACTIONS,
    check_null_penalty,
    frame_image,
    make_task,
    observation_space,
)
from memenv.task import TrialSpec, trial_uniforms

INFO_KEYS = ("t", "target", "is_response", "loss_weight", "t_stim", "t_resp", "label")


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
    An integer array of shape ``[num_envs]`` (any integer dtype) with values in
    ``[0, 10]``; anything else raises ``ValueError``. Floats are refused, as the single env's
    ``Discrete`` space refuses them.

    ## Autoreset
    ``autoreset_mode="next_step"`` (default, Gymnasium's convention): the step after a
    terminal step resets every sub-env, ignores the actions and returns rewards 0.
    ``"same_step"``: the terminal step returns the first observation of the next episodes,
    with the terminal observations in ``info["final_obs"]`` and their infos in
    ``info["final_info"]`` (what stable-baselines3 expects).

    ## Info
    Arrays of shape ``[num_envs]`` for ``t``, ``target``, ``is_response``, ``loss_weight``,
    ``t_stim``, ``t_resp``, ``label`` (and ``reward_step`` on steps), each with its
    Gymnasium ``_key`` mask.

    ## Arguments
    ``num_envs`` and ``autoreset_mode`` plus every argument of `DelayedRecallEnv`.
    ``reset(options=...)`` applies per-episode `TaskConfig` fields to all sub-envs;
    `set_next_episode_options` schedules them for the next episode start (autoreset
    included), which is how curricula change the task between episodes.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

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
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        modes = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
        mode = (
            modes.get(autoreset_mode, autoreset_mode)
            if isinstance(autoreset_mode, str)
            else autoreset_mode
        )
        if mode not in modes.values():
            raise ValueError(
                f"autoreset_mode must be 'next_step' or 'same_step', got {autoreset_mode!r}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.task = make_task(dataset, root, download, task_kwargs)
        self.null_penalty = check_null_penalty(null_penalty)
        self.render_mode = render_mode
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

    @property
    def config(self) -> TaskConfig:
        """The `TaskConfig` of the current episodes."""
        return self.task.config

    @property
    def data_source(self) -> str:
        return self.task.images.source

    def set_next_episode_options(self, options: dict[str, Any]) -> None:
        """Validates ``options`` now and applies them when the next episodes start."""
        merged = {**self._pending, **options}
        self.config.with_episode_options(merged)
        self._pending = merged

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            self.set_next_episode_options(options)
        if seed is not None or self._rngs is None:
            self._seed(seed)
        self._start_episodes()
        return self._observation(), self._info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self._spec is None:
            raise RuntimeError("call reset() before step()")
        if self._needs_reset:  # next-step autoreset: this step only starts new episodes
            self._start_episodes()
            zeros = np.zeros(self.num_envs, dtype=bool)
            return self._observation(), np.zeros(self.num_envs), zeros, zeros.copy(), self._info()
        actions = np.asarray(actions)
        if not self._valid_actions(actions):
            raise ValueError(
                f"actions must be {self.num_envs} integers in [0, {N_ACTIONS - 1}], got {actions!r}"
            )
        rewards = self._rewards(actions)
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
        if self._spec is None or self._needs_reset:
            frames = np.zeros((self.num_envs, self.task.obs_dim), np.float32)
        else:
            frames = self._observation()
        return tuple(frame_image(f, self.task.images.frame_shape) for f in frames)

    # ---------------------------------------------------------------------------- internals
    def _seed(self, seed: int | list[int | None] | None) -> None:
        if isinstance(seed, list | tuple):
            if len(seed) != self.num_envs:
                raise ValueError(f"need {self.num_envs} seeds, got {len(seed)}: {seed!r}")
            seeds = list(seed)
        elif seed is None:
            seeds = [None] * self.num_envs
        else:
            seeds = [seed + i for i in range(self.num_envs)]
        self._rngs = [seeding.np_random(s)[0] for s in seeds]
        self._np_random = self._rngs[0]

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

    def _valid_actions(self, actions: np.ndarray) -> bool:
        """Integers in range, one per sub-env; like the single env, floats such as 1.5 are
        refused rather than truncated."""
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            return False
        return not ((actions < 0) | (actions >= N_ACTIONS)).any()

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
