"""The registered curriculum ids: gym.make / make_vec, and both env checkers."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import curricula
from curricula import CURRICULUM_ENV_IDS, CurriculumWrapper, VectorCurriculumWrapper
from memenv import data

# Unbounded Gaussian noise means infinite pixel bounds; Gymnasium notes that, nothing more.
# check_env also notes that it is given a wrapper: checking the wrapper is the point here.
KNOWN_NOTES = (
    "minimum value is -infinity",
    "maximum value is infinity",
    "is different from the unwrapped version",
)
MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


@pytest.fixture
def data_root(mnist_root, cifar_root, monkeypatch):
    """Tiny MNIST, Fashion-MNIST (the same files) and CIFAR-10 under one folder."""
    assert mnist_root == cifar_root
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", mnist_root / "MNIST" / "raw")
    return mnist_root


def test_every_dataset_and_curriculum_is_registered():
    assert len(CURRICULUM_ENV_IDS) == 9
    assert CURRICULUM_ENV_IDS["DelayedRecall-MNIST-DeCu-v0"] == {
        "dataset": "mnist",
        "curriculum": "decu",
    }
    assert CURRICULUM_ENV_IDS["DelayedRecall-CIFAR10-VoCu-v0"]["dataset"] == "cifar10"
    for env_id, kwargs in CURRICULUM_ENV_IDS.items():
        spec = gym.spec(env_id)
        assert spec.entry_point == "curricula.envs:make_curriculum_env"
        assert spec.vector_entry_point == "curricula.envs:make_curriculum_vector_env"
        assert spec.kwargs == kwargs and spec.max_episode_steps is None
    curricula.register_curriculum_envs()  # a second call is a no-op


@pytest.mark.parametrize("env_id", sorted(CURRICULUM_ENV_IDS))
def test_checkers_pass_on_every_curriculum_id(env_id, data_root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, root=data_root)
        wrapper = env.env.env  # gym.make adds PassiveEnvChecker and OrderEnforcing
        assert isinstance(wrapper, CurriculumWrapper)
        check_env(wrapper, skip_render_check=False)
        sb3_check_env(gym.make(env_id, root=data_root))
    unexpected = [
        str(w.message) for w in caught if not any(n in str(w.message) for n in KNOWN_NOTES)
    ]
    assert unexpected == []
    _, info = env.reset(seed=0)
    expected = {
        "decu": {"n_classes": 10, "t_max": 6},
        "vocu": {"n_classes": 2, "t_max": 20},
        "recu": {"n_classes": 10, "t_max": 20, "null_weight": 0.0},
    }
    assert info["curriculum_settings"] == expected[CURRICULUM_ENV_IDS[env_id]["curriculum"]]
    assert info["curriculum_stage"] == 0
    pickle.loads(pickle.dumps(env))


def test_make_defaults_follow_the_paper_in_trials(data_root):
    env = gym.make("DelayedRecall-CIFAR10-DeCu-v0", root=data_root)
    progress = env.get_wrapper_attr("progress")
    assert progress.units_per_step == 64 and progress.unit == "episodes"
    assert progress.schedule == curricula.decu("cifar10")


def test_make_kwargs_reach_schedule_wrapper_and_env(data_root):
    env = gym.make(
        "DelayedRecall-MNIST-DeCu-v0",
        root=data_root,
        curriculum="adaptive-vocu",
        curriculum_scale=0.01,
        curriculum_unit="steps",
        units_per_step=100,
        curriculum_options={"threshold": 0.5, "window": 10},
        noise_scale=0.5,
    )
    progress = env.get_wrapper_attr("progress")
    assert progress.schedule.name == "adaptive-vocu" and progress.schedule.window == 10
    assert (progress.unit, progress.units_per_step) == ("steps", 100)
    assert env.unwrapped.config.noise_scale == 0.5
    with pytest.raises(ValueError, match="unknown schedule"):
        gym.make("DelayedRecall-MNIST-DeCu-v0", root=data_root, curriculum="linear")
    with pytest.raises(ValueError, match="t_max"):
        gym.make("DelayedRecall-MNIST-VoCu-v0", root=data_root, n_steps=12, t_max=12)


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_make_vec_returns_the_wrapped_vector_native_env(data_root, mode):
    env = gym.make_vec(
        "DelayedRecall-FashionMNIST-VoCu-v0", num_envs=3, root=data_root, autoreset_mode=mode
    )
    assert isinstance(env, VectorCurriculumWrapper)
    assert env.unwrapped.config.dataset == "fashion-mnist"
    assert env.metadata["autoreset_mode"] == MODES[mode]
    _, info = env.reset(seed=0)
    assert info["curriculum_stage"].tolist() == [0, 0, 0]
    env.close()
