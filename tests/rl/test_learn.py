"""Short ``learn()`` runs of SB3 algorithms on the adapter (a few hundred steps each)."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO

from agents.rl import FrameTriggerExtractor, make_sb3_vec_env
from agents.rl.policies import SequenceLstmPolicy


@pytest.fixture
def envs(mnist_root):
    envs = make_sb3_vec_env(num_envs=4, n_steps=8, t_max=8, n_classes=3, root=mnist_root)
    yield envs
    envs.close()


def _check(model, envs, steps: int) -> None:
    model.learn(steps)
    assert model.num_timesteps >= steps
    obs = envs.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4,)
    assert ((actions >= 0) & (actions <= 10)).all()


def test_ppo_learns_on_the_adapter(envs):
    model = PPO("MlpPolicy", envs, n_steps=16, batch_size=32, n_epochs=2, seed=0, device="cpu")
    _check(model, envs, 256)


def test_ppo_with_the_frame_cnn(envs):
    model = PPO(
        "MlpPolicy",
        envs,
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        policy_kwargs={
            "features_extractor_class": FrameTriggerExtractor,
            "features_extractor_kwargs": {"features_dim": 17, "channels": 4},
        },
        seed=0,
        device="cpu",
    )
    _check(model, envs, 128)


@pytest.mark.parametrize("policy", ["MlpLstmPolicy", SequenceLstmPolicy])
def test_recurrent_ppo_learns_on_the_adapter(envs, policy):
    model = RecurrentPPO(
        policy,
        envs,
        n_steps=16,
        batch_size=32,
        n_epochs=2,
        policy_kwargs={"lstm_hidden_size": 16, "net_arch": [16]},
        seed=0,
        device="cpu",
    )
    _check(model, envs, 256)
    obs = envs.reset()
    starts = np.ones(4, dtype=bool)
    _, state = model.predict(obs, state=None, episode_start=starts, deterministic=True)
    assert state[0].shape == (1, 4, 16)
