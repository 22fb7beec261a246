import warnings

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import memenv  # noqa: F401
from agents.rl import FrameTriggerExtractor, SB3VecEnv, make_sb3_vec_env


def test_adapter_equals_dummy_vec_env_over_single_envs(mnist_root):
    """Against SB3's own recipe, ``make_vec_env``: a DummyVecEnv of Monitor-wrapped envs."""
    n = 5
    kwargs = {"t_max": 10, "n_steps": 12, "root": mnist_root, "null_penalty": 0.25}
    ours = make_sb3_vec_env("DelayedRecall-MNIST-v0", n, **kwargs)
    theirs = DummyVecEnv([lambda: Monitor(gym.make("DelayedRecall-MNIST-v0", **kwargs))] * n)
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
            episode_a, episode_b = a.pop("episode", None), b.pop("episode", None)
            assert a == b
            if terminal_b is not None:
                dones_seen += 1
                np.testing.assert_array_equal(terminal_a, terminal_b)
                # Monitor's statistics; "t" is wall time, so only its type can match.
                assert {k: episode_a[k] for k in "rl"} == {k: episode_b[k] for k in "rl"}
                assert type(episode_a["r"]) is type(episode_b["r"]) is float
                assert isinstance(episode_a["t"], float) and episode_a["t"] >= 0
            else:
                assert episode_a is episode_b is None
    assert dones_seen == 2 * n
    assert ours.env_is_wrapped(Monitor) == theirs.env_is_wrapped(Monitor) == [True] * n


def test_episode_statistics_are_the_summed_rewards(mnist_root):
    envs = make_sb3_vec_env(num_envs=3, n_steps=6, t_max=6, null_penalty=0.1, root=mnist_root)
    envs.seed(0)
    envs.reset()
    rng = np.random.default_rng(1)
    returns, lengths, reported = np.zeros(3), np.zeros(3, int), []
    for _ in range(14):  # two episodes, then 2 steps of a third, then a reset
        _, rewards, dones, infos = envs.step(rng.integers(0, 11, 3))
        returns += rewards
        lengths += 1
        for i, info in enumerate(infos):
            assert ("episode" in info) == dones[i]
            if dones[i]:
                assert info["episode"]["l"] == lengths[i] == 6
                assert info["episode"]["r"] == pytest.approx(returns[i], abs=1e-6)
                reported.append(info["episode"]["r"])
                returns[i], lengths[i] = 0.0, 0
    assert len(reported) == 6 and len(set(reported)) > 1  # the penalty makes returns vary
    assert envs.episode_count == 6
    envs.reset()  # drops the unfinished episodes, as Monitor and VecMonitor do
    for _ in range(6):
        _, _, dones, infos = envs.step(np.zeros(3, dtype=np.int64))
    assert dones.all() and [info["episode"]["l"] for info in infos] == [6, 6, 6]


class Capture(KVWriter):
    """SB3 logger output kept in memory."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def write(self, key_values, key_excluded, step=0) -> None:
        self.rows.append(dict(key_values))


class Rewards(BaseCallback):
    """The rewards of every finished training episode, summed here (not by the adapter)."""

    def _on_training_start(self) -> None:
        self.running = np.zeros(self.training_env.num_envs)
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        self.running += self.locals["rewards"]
        for i in np.flatnonzero(self.locals["dones"]):
            self.returns.append(float(self.running[i]))
            self.running[i] = 0.0
        return True


def test_ppo_fills_ep_info_buffer_and_logs_ep_rew_mean(mnist_root):
    envs = make_sb3_vec_env(
        num_envs=4, n_steps=6, t_max=6, n_classes=3, null_penalty=0.1, root=mnist_root
    )
    model = PPO("MlpPolicy", envs, n_steps=12, batch_size=24, n_epochs=1, seed=0, device="cpu")
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    callback = Rewards()
    model.learn(96, callback=callback)  # 2 rollouts of 2 episodes per sub-env
    assert len(model.ep_info_buffer) == len(callback.returns) == 16
    assert [e["r"] for e in model.ep_info_buffer] == pytest.approx(callback.returns, abs=1e-5)
    assert [e["l"] for e in model.ep_info_buffer] == [6] * 16
    logged = [row for row in capture.rows if "rollout/ep_rew_mean" in row]
    assert logged, capture.rows
    assert logged[-1]["rollout/ep_rew_mean"] == pytest.approx(np.mean(callback.returns), abs=1e-5)
    assert logged[-1]["rollout/ep_len_mean"] == 6


def test_sb3_evaluate_policy_reads_the_statistics_without_a_monitor_warning(mnist_root):
    envs = make_sb3_vec_env(num_envs=2, n_steps=6, t_max=6, null_penalty=0.1, root=mnist_root)
    model = PPO("MlpPolicy", envs, n_steps=6, batch_size=12, seed=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rewards, lengths = evaluate_policy(
            model, envs, n_eval_episodes=4, return_episode_rewards=True
        )
    assert lengths == [6, 6, 6, 6] and len(rewards) == 4


def test_monitor_off_and_vec_monitor_on_top(mnist_root):
    envs = make_sb3_vec_env(num_envs=2, n_steps=5, t_max=5, root=mnist_root, monitor=False)
    assert envs.env_is_wrapped(Monitor) == [False, False]
    envs.reset()
    for _ in range(5):
        _, _, dones, infos = envs.step(np.zeros(2, dtype=np.int64))
    assert dones.all() and all("episode" not in info for info in infos)
    with pytest.raises(ValueError, match="monitor must be True or False, got 'yes'"):
        make_sb3_vec_env(num_envs=2, root=mnist_root, monitor="yes")
    # SB3's VecMonitor over the default adapter: its statistics replace the adapter's (it warns).
    with pytest.warns(UserWarning, match="already wrapped with a `Monitor`"):
        wrapped = VecMonitor(make_sb3_vec_env(num_envs=2, n_steps=5, t_max=5, root=mnist_root))
    wrapped.reset()
    for _ in range(5):
        _, _, dones, infos = wrapped.step(np.zeros(2, dtype=np.int64))
    assert [info["episode"]["l"] for info in infos] == [5, 5]


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


def test_get_images_gives_one_rendered_frame_per_sub_env(mnist_root):
    envs = make_sb3_vec_env(num_envs=3, root=mnist_root, render_mode="rgb_array")
    obs = envs.reset()
    images = envs.get_images()
    assert len(images) == 3 and all(image.shape == (272, 224, 3) for image in images)
    for image, row in zip(images, obs, strict=True):
        grey = (np.clip(row[:-1], 0, 1).reshape(28, 28) * 255).round().astype(np.uint8)
        np.testing.assert_array_equal(image[:224:8, ::8, 1], grey)
    assert make_sb3_vec_env(num_envs=2, root=mnist_root).get_images() == [None, None]
