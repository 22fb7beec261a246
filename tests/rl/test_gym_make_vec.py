"""Per-env Gymnasium wrappers: what the vector-native entry point refuses, and the documented
route (``vectorization_mode="sync"``) that applies them (docs/rl.md)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import RecordEpisodeStatistics
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor

import memenv  # noqa: F401
from memenv.errors import ArgumentTypeError
from memenv.vector_env import DelayedRecallVectorEnv

ID = "DelayedRecall-MNIST-v0"


def test_the_vector_native_env_refuses_wrappers_and_max_episode_steps(mnist_root):
    with pytest.raises(gym.error.Error, match="vector_entry_point.*wrappers"):
        gym.make_vec(ID, num_envs=2, wrappers=[RecordEpisodeStatistics], root=mnist_root)
    with pytest.raises(ArgumentTypeError, match="max_episode_steps=5.*take n_steps") as caught:
        gym.make_vec(ID, num_envs=2, max_episode_steps=5, root=mnist_root)
    assert isinstance(caught.value, TypeError) and "vectorization_mode='sync'" in str(caught.value)


def test_sync_mode_applies_per_env_wrappers_to_the_same_episodes(mnist_root):
    kwargs = {"n_steps": 6, "t_max": 6, "null_penalty": 0.1, "root": mnist_root}
    wrapped = gym.make_vec(
        ID, num_envs=3, vectorization_mode="sync", wrappers=[RecordEpisodeStatistics], **kwargs
    )
    native = gym.make_vec(ID, num_envs=3, **kwargs)
    assert isinstance(wrapped, gym.vector.SyncVectorEnv)
    assert isinstance(native, DelayedRecallVectorEnv)
    assert all(isinstance(env, RecordEpisodeStatistics) for env in wrapped.envs)
    obs_w, _ = wrapped.reset(seed=7)
    obs_n, _ = native.reset(seed=7)
    np.testing.assert_array_equal(obs_w, obs_n)  # sub-env i is seeded 7 + i in both
    rng = np.random.default_rng(0)
    returns = np.zeros(3)
    for _ in range(6):
        actions = rng.integers(0, 11, 3)
        obs_w, rew_w, term_w, _, info_w = wrapped.step(actions)
        obs_n, rew_n, term_n, _, _ = native.step(actions)
        np.testing.assert_array_equal(obs_w, obs_n)
        np.testing.assert_array_equal(rew_w, rew_n)
        returns += rew_n
    assert term_w.all() and term_n.all()
    np.testing.assert_allclose(info_w["episode"]["r"], returns, atol=1e-6)
    np.testing.assert_array_equal(info_w["episode"]["l"], [6, 6, 6])


def test_sync_mode_takes_max_episode_steps(mnist_root):
    envs = gym.make_vec(
        ID,
        num_envs=2,
        vectorization_mode="sync",
        max_episode_steps=3,
        n_steps=8,
        t_max=8,
        root=mnist_root,
    )
    envs.reset(seed=0)
    for _ in range(3):
        _, _, terminated, truncated, _ = envs.step(np.zeros(2, dtype=np.int64))
    assert truncated.all() and not terminated.any()


def test_sb3_make_vec_env_takes_wrapper_class(mnist_root):
    """SB3's own route to per-env wrappers: a DummyVecEnv of single envs."""
    envs = make_vec_env(
        ID,
        n_envs=2,
        wrapper_class=gym.wrappers.TimeLimit,
        wrapper_kwargs={"max_episode_steps": 3},
        env_kwargs={"n_steps": 8, "t_max": 8, "root": mnist_root},
    )
    assert envs.env_is_wrapped(Monitor) == [True, True]
    assert envs.env_is_wrapped(gym.wrappers.TimeLimit) == [True, True]
    envs.reset()
    for _ in range(3):
        _, _, dones, infos = envs.step(np.zeros(2, dtype=np.int64))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
