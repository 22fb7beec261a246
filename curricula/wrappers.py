"""Gymnasium wrappers that apply a curriculum to the delayed-recall environments."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorWrapper

from curricula.progress import CurriculumProgress, EpisodeCurriculum
from curricula.schedule import Curriculum
from memenv.errors import UsageError

INFO_STAGE = "curriculum_stage"
INFO_STEP = "curriculum_step"
INFO_SETTINGS = "curriculum_settings"


class CurriculumWrapper(gym.Wrapper):
    """Applies a curriculum to a `memenv.env.DelayedRecallEnv`, one change per episode.

    ## Description
    Counts completed episodes (``unit="episodes"``, default) or environment steps
    (``unit="steps"``); ``schedule step = count // units_per_step``. Every ``reset`` passes the
    settings in force at the current schedule step as ``reset(options=...)``, so a stage
    change takes effect at the next episode boundary, never inside an episode. The options
    hold every setting the schedule sets at any stage (a setting not yet set by a stage keeps
    the wrapped env's value at wrap time). ``reset(options=...)`` given by the caller is
    applied on top, for that episode only. An episode abandoned by ``reset`` before its end is
    not counted (its steps are, with ``unit="steps"``).

    An adaptive schedule is told the outcome of every finished episode
    (``observe(step, n_correct, n_total)``: 1 response, correct when the action at ``t_resp``
    earned reward 1; a truncated episode that never reached ``t_resp`` reports 0 responses).

    Each environment counts only its own episodes: several copies (e.g. an SB3
    ``DummyVecEnv``) advance independently. For one count over a batch use
    `VectorCurriculumWrapper` on the vector-native env.

    ## Observation, Action Space, Rewards, Episode End
    Those of the wrapped env.

    ## Info
    The wrapped env's info plus, on reset and every step, the current episode's
    ``curriculum_stage`` (int), ``curriculum_step`` (schedule step at its start) and
    ``curriculum_settings`` (dict: the options the wrapper passed).

    ## Arguments
    * ``env``: A `DelayedRecallEnv` (or a wrapper around one): ``env.unwrapped.config`` must
      be its `memenv.TaskConfig`.
    * ``schedule``: A schedule object or a name for `curricula.get_schedule`.
    * ``unit``: ``"episodes"`` or ``"steps"``.
    * ``units_per_step``: Counted units per schedule step; default: the paper's batch size in
      episodes (128 MNIST / Fashion-MNIST, 64 CIFAR-10), times 20 for ``unit="steps"``.

    Raises ValueError at construction when the env's configuration rejects a stage.

    ## Version History
    * v0: initial version.
    """

    def __init__(
        self,
        env: gym.Env,
        schedule: Curriculum | str,
        unit: str = "episodes",
        units_per_step: int | None = None,
    ) -> None:
        super().__init__(env)
        self.progress = CurriculumProgress(schedule, env.unwrapped.config, unit, units_per_step)
        self._episode: EpisodeCurriculum | None = None
        self._t = 0
        self._t_resp = -1
        self._n_correct = 0

    @property
    def schedule(self) -> Curriculum:
        return self.progress.schedule

    @property
    def episode_curriculum(self) -> EpisodeCurriculum | None:
        """Stage, schedule step and options of the current episode (None before reset)."""
        return self._episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        episode = self.progress.episode_at(self.progress.schedule_step())
        obs, info = self.env.reset(seed=seed, options={**episode.options, **(options or {})})
        self._episode = episode
        self._t = 0
        self._t_resp = int(info["t_resp"])
        self._n_correct = 0
        return obs, self._add_info(info)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._t == self._t_resp and float(reward) > 0.5:
            self._n_correct = 1
        self._t += 1
        self.progress.count_steps(1)
        if terminated or truncated:
            n_total = int(self._t > self._t_resp)
            self.progress.end_episodes(1, self._n_correct, n_total)
        return obs, reward, terminated, truncated, self._add_info(info)

    def curriculum_state_dict(self) -> dict[str, Any]:
        """The curriculum's position (count and schedule state) as plain data."""
        return self.progress.state_dict()

    def load_curriculum_state_dict(self, state: dict[str, Any]) -> None:
        """Restores `curriculum_state_dict`; applies from the next ``reset``."""
        self.progress.load_state_dict(state)

    def _add_info(self, info: dict[str, Any]) -> dict[str, Any]:
        episode = self._episode
        info[INFO_STAGE] = episode.stage
        info[INFO_STEP] = episode.step
        info[INFO_SETTINGS] = dict(episode.options)
        return info


class VectorCurriculumWrapper(VectorWrapper):
    """Applies a curriculum to a `memenv.vector_env.DelayedRecallVectorEnv`.

    ## Description
    The vector-native env runs its sub-envs in lockstep, so all of them start and end their
    episodes together and share one stage. The wrapper counts episodes (``num_envs`` per
    lockstep episode, default) or environment steps (``num_envs`` per step);
    ``schedule step = count // units_per_step``. With ``num_envs`` equal to the paper's batch
    size (128 MNIST), one lockstep episode is exactly one paper training step.

    New settings reach the env through its ``set_next_episode_options`` (applied when the next
    episodes start: Gymnasium's autoreset or ``reset``) and through ``reset(options=...)``:

    * ``autoreset_mode="next_step"``: the settings for the next episodes are chosen after the
      terminal step, once the finished episodes were counted and reported.
    * ``"same_step"``: the terminal step itself starts the next episodes, so their settings are
      chosen when the previous episodes start, from the count they will end at. An adaptive
      schedule's advance therefore takes effect one episode later in this mode.

    An adaptive schedule gets one report per lockstep episode: ``n_correct`` correct responses
    out of the ``num_envs`` trials.

    ## Observation, Action Space, Rewards, Episode End
    Those of the wrapped env.

    ## Info
    The wrapped env's info plus, on reset and every step, with Gymnasium's ``_key`` masks:
    ``curriculum_stage`` and ``curriculum_step`` (int arrays ``[num_envs]``) and
    ``curriculum_settings`` (a nested info dict: one ``[num_envs]`` array per setting), for the
    episodes the returned observations belong to. In same-step mode, ``info["final_info"]``
    gets the finished episodes' values.

    ## Arguments
    * ``env``: A `DelayedRecallVectorEnv` (or a vector wrapper around one): the unwrapped env
      must have ``config`` and ``set_next_episode_options``.
    * ``schedule``, ``unit``, ``units_per_step``: as in `CurriculumWrapper`.

    ## Version History
    * v0: initial version.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        schedule: Curriculum | str,
        unit: str = "episodes",
        units_per_step: int | None = None,
    ) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not hasattr(base, "set_next_episode_options") or not hasattr(base, "config"):
            raise UsageError(
                f"{type(base).__name__} has no set_next_episode_options/config; wrap a "
                "DelayedRecallVectorEnv (for other vector envs wrap each sub-env in "
                "CurriculumWrapper)"
            )
        self.progress = CurriculumProgress(schedule, base.config, unit, units_per_step)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise UsageError(f"autoreset_mode {mode!r} is not supported (next_step or same_step)")
        self._same_step = mode == AutoresetMode.SAME_STEP
        self._episode: EpisodeCurriculum | None = None
        self._next: EpisodeCurriculum | None = None
        self._awaiting_autoreset = False
        self._t = 0
        self._t_resp = np.zeros(self.num_envs, dtype=np.int64)
        self._n_correct = 0
        self._all = np.ones(self.num_envs, dtype=bool)

    @property
    def schedule(self) -> Curriculum:
        return self.progress.schedule

    @property
    def episode_curriculum(self) -> EpisodeCurriculum | None:
        """Stage, schedule step and options of the current episodes (None before reset)."""
        return self._episode

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        episode = self.progress.episode_at(self.progress.schedule_step())
        obs, info = self.env.reset(seed=seed, options={**episode.options, **(options or {})})
        self._start(episode, info)
        return obs, self._add_info(info, episode)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        obs, rewards, terminations, truncations, info = self.env.step(actions)
        if self._awaiting_autoreset:  # next-step autoreset: this step started new episodes
            self._start(self._next, info)
            return obs, rewards, terminations, truncations, self._add_info(info, self._episode)
        hit = self._t_resp == self._t
        self._n_correct += int(np.count_nonzero(hit & (np.asarray(rewards) > 0.5)))
        self._t += 1
        self.progress.count_steps(self.num_envs)
        done = np.asarray(terminations) | np.asarray(truncations)
        if not done.any():
            return obs, rewards, terminations, truncations, self._add_info(info, self._episode)
        if not done.all():
            raise RuntimeError(
                "VectorCurriculumWrapper needs sub-envs in lockstep, but only "
                f"{int(done.sum())} of {self.num_envs} episodes ended"
            )
        n_total = int(np.count_nonzero(self._t_resp < self._t))
        self.progress.end_episodes(self.num_envs, self._n_correct, n_total)
        finished = self._episode
        if self._same_step:  # obs and info already belong to the next episodes
            if isinstance(info.get("final_info"), dict):
                self._add_info(info["final_info"], finished)
            self._start(self._next, info)
            return obs, rewards, terminations, truncations, self._add_info(info, self._episode)
        self._schedule_next(self.progress.count)
        self._awaiting_autoreset = True
        return obs, rewards, terminations, truncations, self._add_info(info, finished)

    def curriculum_state_dict(self) -> dict[str, Any]:
        """The curriculum's position (count and schedule state) as plain data."""
        return self.progress.state_dict()

    def load_curriculum_state_dict(self, state: dict[str, Any]) -> None:
        """Restores `curriculum_state_dict`; applies from the next ``reset``."""
        self.progress.load_state_dict(state)

    # ---------------------------------------------------------------------------- internals
    def _start(self, episode: EpisodeCurriculum, info: dict[str, Any]) -> None:
        self._episode = episode
        self._awaiting_autoreset = False
        self._t = 0
        self._t_resp = np.asarray(info["t_resp"], dtype=np.int64).copy()
        self._n_correct = 0
        if self._same_step:
            n_steps = self.env.unwrapped.config.n_steps
            per_episode = self.num_envs * (1 if self.progress.unit == "episodes" else n_steps)
            self._schedule_next(self.progress.count + per_episode)

    def _schedule_next(self, count_at_start: int) -> None:
        """Chooses the next episodes' settings, for a count of ``count_at_start`` at their start."""
        self._next = self.progress.episode_at(self.progress.schedule_step(count_at_start))
        self.env.unwrapped.set_next_episode_options(self._next.options)

    def _add_info(self, info: dict[str, Any], episode: EpisodeCurriculum) -> dict[str, Any]:
        info[INFO_STAGE] = np.full(self.num_envs, episode.stage)
        info[INFO_STEP] = np.full(self.num_envs, episode.step)
        settings: dict[str, Any] = {}
        for key, value in episode.options.items():
            settings[key] = np.full(self.num_envs, value, dtype=object if value is None else None)
            settings[f"_{key}"] = self._all
        info[INFO_SETTINGS] = settings
        for key in (INFO_STAGE, INFO_STEP, INFO_SETTINGS):
            info[f"_{key}"] = self._all
        return info
