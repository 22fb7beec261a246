"""`SB3VecEnv`: the vector-native delayed-recall env behind stable-baselines3's `VecEnv` API."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

import memenv  # noqa: F401  (registers the ids)
from memenv.errors import UsageError
from memenv.vector_env import INFO_KEYS, DelayedRecallVectorEnv


class SB3VecEnv(VecEnv):
    """Stable-baselines3 view of a `DelayedRecallVectorEnv` (no per-env Python objects).

    Follows SB3's conventions exactly as `DummyVecEnv` does over single envs: ``reset()`` takes
    its seeds from `VecEnv.seed` (env ``i`` gets ``seed + i``) and options from
    `VecEnv.set_options`; a finished episode is reset in the same step, its last observation
    in ``infos[i]["terminal_observation"]``; rewards are float32, dones bool, infos a list of
    dicts with ``"TimeLimit.truncated"``. Given the same seeds, observations, rewards, dones and
    infos equal those of ``DummyVecEnv([lambda: Monitor(gym.make(id))] * n)``.

    Episode statistics, as SB3's ``Monitor`` reports them (unless ``monitor=False``): at the end
    of every episode ``infos[i]["episode"] = {"r": return, "l": length, "t": seconds}`` (the
    return rounded to 6 decimals, ``t`` the wall time since the adapter was built), which is
    what fills ``model.ep_info_buffer`` and so SB3's ``rollout/ep_rew_mean`` and
    ``rollout/ep_len_mean``; ``env_is_wrapped(Monitor)`` answers True so that SB3's
    ``evaluate_policy`` reads them. ``reset()`` restarts the running returns, as ``Monitor``
    and ``VecMonitor`` do.

    All sub-envs share one task configuration (they run in lockstep), so `set_attr` and
    `env_method` act on the whole batch; asking for a strict subset of the envs raises
    ValueError. Curriculum knobs: ``env_method("set_next_episode_options", {"n_classes": 4})``
    (applies at the next episode start) or ``set_options({...})`` before ``reset()``.

    Args:
        venv: A `DelayedRecallVectorEnv` built with ``autoreset_mode="same_step"``.
        monitor: Report episode statistics in ``infos`` (True, the default).
    """

    def __init__(self, venv: DelayedRecallVectorEnv, monitor: bool = True) -> None:
        if not isinstance(venv, DelayedRecallVectorEnv):
            raise UsageError(f"venv must be a DelayedRecallVectorEnv, got {type(venv).__name__}")
        if venv.metadata["autoreset_mode"] != gym.vector.AutoresetMode.SAME_STEP:
            raise UsageError(
                "SB3 resets finished episodes in the same step: build the env with "
                f"autoreset_mode='same_step', got {venv.metadata['autoreset_mode']!r}"
            )
        if not isinstance(monitor, bool):
            raise UsageError(f"monitor must be True or False, got {monitor!r}")
        self.venv = venv
        self.monitor = monitor
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self.t_start = time.time()
        self.episode_returns = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self.episode_count = 0

    # ------------------------------------------------------------------------- stepping
    def reset(self) -> np.ndarray:
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        options = self._options[0] if self._options else {}
        if any(o != options for o in self._options):
            raise UsageError("all sub-envs share one task: pass the same options to every env")
        obs, info = self.venv.reset(seed=seeds, options=options or None)
        self.reset_infos = _split_info(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        self.episode_returns[:] = 0.0
        self.episode_lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        if dones.any():
            infos = _split_info(info["final_info"], self.num_envs)
            self.reset_infos = _split_info(info, self.num_envs)
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = info["final_obs"][i]
        else:
            infos = _split_info(info, self.num_envs)
        for i, entry in enumerate(infos):
            entry["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if self.monitor:
            self._record_episodes(rewards, dones, infos)
        return obs, rewards.astype(np.float32), dones, infos

    def _record_episodes(
        self, rewards: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]
    ) -> None:
        """``infos[i]["episode"]`` for every finished episode, as SB3's ``Monitor`` writes it."""
        self.episode_returns += rewards
        self.episode_lengths += 1
        if not dones.any():
            return
        elapsed = round(time.time() - self.t_start, 6)
        for i in np.flatnonzero(dones):
            infos[i]["episode"] = {
                "r": round(float(self.episode_returns[i]), 6),
                "l": int(self.episode_lengths[i]),
                "t": elapsed,
            }
        self.episode_count += int(dones.sum())
        self.episode_returns[dones] = 0.0
        self.episode_lengths[dones] = 0

    def close(self) -> None:
        self.venv.close()

    # ------------------------------------------------------------------ attributes, methods
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._require_all(indices, f"set_attr({attr_name!r})")
        setattr(self.venv, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        self._require_all(indices, f"env_method({method_name!r})")
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """True for SB3's ``Monitor`` (and its bases) while ``monitor`` is on: the adapter
        reports what ``Monitor`` reports. There are no other per-env wrappers."""
        wrapped = (
            self.monitor and isinstance(wrapper_class, type) and issubclass(Monitor, wrapper_class)
        )
        return [wrapped for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        images = self.venv.render()
        return list(images) if images is not None else [None] * self.num_envs

    def _require_all(self, indices: VecEnvIndices, what: str) -> None:
        chosen = sorted(set(self._get_indices(indices)))
        if chosen != list(range(self.num_envs)):
            raise UsageError(
                f"{what} on envs {chosen}: the {self.num_envs} sub-envs share one task "
                "configuration, so they can only be changed together (indices=None)"
            )


def make_sb3_vec_env(
    env_id: str = "DelayedRecall-MNIST-v0",
    num_envs: int = 8,
    *,
    monitor: bool = True,
    **kwargs: Any,
) -> SB3VecEnv:
    """``gym.make_vec(env_id, num_envs, autoreset_mode="same_step", **kwargs)`` for SB3, with
    episode statistics in ``infos`` as SB3's ``Monitor`` writes them (``monitor=False``: none)."""
    venv = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode="same_step", **kwargs)
    return SB3VecEnv(venv.unwrapped if hasattr(venv, "unwrapped") else venv, monitor=monitor)


def _split_info(info: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's dict of arrays as SB3's list of per-env dicts (plain Python scalars)."""
    keys = [k for k in (*INFO_KEYS, "reward_step") if k in info]
    columns = [info[k].tolist() for k in keys]
    return (
        [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
        if keys
        else [{} for _ in range(num_envs)]
    )
