import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import memenv  # noqa: F401
from agents.rl import FrameTriggerExtractor, SB3VecEnv, make_sb3_vec_env


def test_adapter_equals_dummy_vec_env_over_single_envs(mnist_root):
    n = 5
    kwargs = {"t_max": 10, "n_steps": 12, "root": mnist_root}
    ours = make_sb3_vec_env("DelayedRecall-MNIST-v0", n, **kwargs)
    theirs = DummyVecEnv([lambda: gym.make("DelayedRecall-MNIST-v0", **kwargs)] * n)
    ours.seed(21)
    theirs.seed(21)
    np.testing.assert_array_equal(ours.reset(), theirs.reset())
    assert ours.reset_infos == theirs.reset_infos
    rng = np.random.default_rng(0)
    dones_seen = 0
    for _ in range(30):  # two and a half episodes of 12 steps
        actions = rng.integers(0, 11, n)
        obs_a, rew_a, done_a, info_a = ours.step(actions)
        obs_b, rew_b, done_b, info_b = theirs.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        assert rew_a.dtype == rew_b.dtype == np.float32
        np.testing.assert_array_equal(done_a, done_b)
        for a, b in zip(info_a, info_b, strict=True):
            terminal_a, terminal_b = (
                a.pop("terminal_observation", None),
                b.pop("terminal_observation", None),
            )
            assert a == b
            if terminal_b is not None:
                dones_seen += 1
                np.testing.assert_array_equal(terminal_a, terminal_b)
    assert dones_seen == 2 * n


def test_attributes_and_methods_reach_the_shared_task(mnist_root):
    envs = make_sb3_vec_env(num_envs=4, root=mnist_root)
    assert "IDX files" in envs.get_attr("data_source")[0]
    assert envs.get_attr("null_penalty") == [0.0] * 4
    envs.set_attr("null_penalty", 0.5)
    assert envs.venv.null_penalty == 0.5
    envs.env_method("set_next_episode_options", {"n_classes": 2})
    envs.reset()
    labels = {info["label"] for info in envs.reset_infos}
    assert labels <= {0, 1}
    envs.set_options({"t_max": 6})
    envs.reset()
    assert envs.get_attr("config")[0].t_max == 6
    with pytest.raises(ValueError, match="share one task"):
        envs.env_method("set_next_episode_options", {"n_classes": 3}, indices=[0])


def test_adapter_needs_same_step_autoreset(mnist_root):
    with pytest.raises(ValueError, match="same_step"):
        SB3VecEnv(gym.make_vec("DelayedRecall-MNIST-v0", num_envs=2, root=mnist_root))
    with pytest.raises(ValueError, match="DelayedRecallVectorEnv"):
        SB3VecEnv(gym.make_vec("CartPole-v1", num_envs=2))


def test_sb3_env_checks_accept_the_adapter(mnist_root):
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.util import obs_space_info

    envs = make_sb3_vec_env(num_envs=3, n_steps=6, t_max=6, root=mnist_root)
    assert isinstance(envs, VecEnv)
    keys, shapes, dtypes = obs_space_info(envs.observation_space)
    assert shapes[None] == (785,) and dtypes[None] == np.float32
    obs = envs.reset()
    assert obs.shape == (3, 785) and obs.dtype == np.float32
    obs, rewards, dones, infos = envs.step(np.zeros(3, dtype=np.int64))
    assert rewards.dtype == np.float32 and dones.dtype == bool and len(infos) == 3


def test_frame_trigger_extractor_shapes_and_trigger_pass_through():
    space = gym.spaces.Box(-np.inf, np.inf, (785,), np.float32)
    extractor = FrameTriggerExtractor(space, features_dim=33)
    import torch

    obs = torch.randn(6, 785)
    obs[:, -1] = torch.tensor([0, 1, 0, 1, 1, 0], dtype=torch.float32)
    features = extractor(obs)
    assert features.shape == (6, 33)
    assert torch.equal(features[:, -1], obs[:, -1])
    with pytest.raises(ValueError, match="785 or 3073"):
        FrameTriggerExtractor(gym.spaces.Box(0, 1, (10,), np.float32))
