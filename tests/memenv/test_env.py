import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import memenv
from memenv.vector_env import DelayedRecallVectorEnv

# Unbounded Gaussian noise means infinite pixel bounds; Gymnasium notes that, nothing more.
KNOWN_BOUND_NOTES = ("minimum value is -infinity", "maximum value is infinity")


def data_kwargs(env_id, mnist_root, cifar_root, monkeypatch):
    if env_id.endswith("CIFAR10-v0"):
        return {"root": cifar_root}
    if "Fashion" in env_id:
        monkeypatch.setattr(memenv.data, "DEBIAN_FASHION_MNIST", mnist_root / "MNIST" / "raw")
    return {"root": mnist_root}


@pytest.mark.parametrize("env_id", sorted(memenv.ENV_IDS))
def test_checkers_pass_on_every_registered_id(env_id, mnist_root, cifar_root, monkeypatch):
    kwargs = data_kwargs(env_id, mnist_root, cifar_root, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, **kwargs)
        check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(gym.make(env_id, **kwargs))
    unexpected = [
        str(w.message) for w in caught if not any(n in str(w.message) for n in KNOWN_BOUND_NOTES)
    ]
    assert unexpected == []
    assert "embedded" not in env.unwrapped.data_source


def test_spaces_and_contract():
    env = gym.make("DelayedRecall-MNIST-v0")
    assert env.observation_space.shape == (785,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(11)
    obs, info = env.reset(seed=0)
    assert set(info) == {"t", "target", "is_response", "loss_weight", "t_stim", "t_resp", "label"}
    assert "embedded" in env.unwrapped.data_source
    steps = 0
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(0)
        assert type(reward) is float and not truncated
        steps += 1
    assert steps == 20 and info["t"] == 20


@pytest.mark.parametrize("seed", range(5))
def test_reward_is_one_exactly_for_the_right_answer_at_t_resp(seed):
    env = gym.make("DelayedRecall-MNIST-v0", null_penalty=0.25)
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    for t in range(20):
        action = int(rng.integers(0, 11)) if rng.random() < 0.5 else info["target"]
        was_response, label = info["is_response"], info["label"]
        _, reward, _, _, info = env.step(action)
        assert info["reward_step"] == t
        if was_response:
            assert reward == (1.0 if action == label + 1 else 0.0)
        else:
            assert reward == (-0.25 if action != 0 else 0.0)


def test_info_describes_the_returned_frame():
    env = gym.make("DelayedRecall-MNIST-v0")
    obs, info = env.reset(seed=3)
    for _ in range(19):
        assert obs[-1] == float(info["is_response"])
        assert info["target"] == (info["label"] + 1 if info["t"] == info["t_resp"] else 0)
        obs, _, _, _, info = env.step(0)


def test_single_env_is_deterministic_under_seed():
    def episode(seed):
        env = gym.make("DelayedRecall-MNIST-v0")
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(0)[0] for _ in range(20)]
        return np.stack(frames)

    np.testing.assert_array_equal(episode(7), episode(7))
    assert not np.array_equal(episode(7), episode(8))


def test_vector_env_is_native_and_matches_single_envs_seeded_alike():
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=6, t_max=12)
    assert isinstance(vec, DelayedRecallVectorEnv)
    singles = [gym.make("DelayedRecall-MNIST-v0", t_max=12) for _ in range(6)]
    obs, info = vec.reset(seed=11)
    single_out = [env.reset(seed=11 + i) for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack([o for o, _ in single_out]))
    rng = np.random.default_rng(0)
    for step in range(45):  # two episodes and the next-step autoresets between them
        actions = rng.integers(0, 11, 6)
        obs, rewards, terminated, truncated, info = vec.step(actions)
        if step in (20, 41):  # the step after termination only resets
            expected = [env.reset() for env in singles]
            np.testing.assert_array_equal(obs, np.stack([o for o, _ in expected]))
            assert not terminated.any() and (rewards == 0).all()
            continue
        results = [env.step(int(a)) for env, a in zip(singles, actions, strict=True)]
        np.testing.assert_array_equal(obs, np.stack([r[0] for r in results]))
        np.testing.assert_array_equal(rewards, [r[1] for r in results])
        np.testing.assert_array_equal(terminated, [r[2] for r in results])
        for key in ("t", "target", "label", "t_resp", "loss_weight"):
            np.testing.assert_array_equal(info[key], [r[4][key] for r in results])


def test_vector_env_same_step_autoreset():
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=3, autoreset_mode="same_step")
    vec.reset(seed=0)
    for _ in range(19):
        vec.step(np.zeros(3, np.int64))
    obs, _, terminated, _, info = vec.step(np.zeros(3, np.int64))
    assert terminated.all() and info["t"].tolist() == [0, 0, 0]
    assert len(info["final_obs"]) == 3 and info["final_info"]["t"].tolist() == [20] * 3
    assert np.isfinite(obs).all() and obs.shape == (3, 785)


def test_vector_env_deterministic_and_seed_lists():
    a = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=4)
    b = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=4)
    np.testing.assert_array_equal(a.reset(seed=3)[0], b.reset(seed=[3, 4, 5, 6])[0])
    assert not np.array_equal(a.reset(seed=3)[0], b.reset(seed=4)[0])
    with pytest.raises(ValueError, match="4 seeds"):
        b.reset(seed=[1, 2])


def test_reset_options_change_the_task_and_persist():
    env = gym.make("DelayedRecall-MNIST-v0")
    _, info = env.reset(seed=0, options={"n_classes": 2, "t_max": 8})
    labels, t_resps = [], []
    for _ in range(200):
        labels.append(info["label"])
        t_resps.append(info["t_resp"])
        _, info = env.reset()
    assert set(labels) == {0, 1} and max(t_resps) == 7
    assert env.unwrapped.config.n_classes == 2


def test_vector_options_apply_now_or_at_the_next_episode():
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=64)
    _, info = vec.reset(seed=0, options={"t_max": 6})
    assert (info["t_resp"] <= 5).all()
    vec.set_next_episode_options({"n_classes": 1})
    for _ in range(21):
        _, _, _, _, info = vec.step(np.zeros(64, np.int64))
    assert (info["label"] == 0).all() and (info["t_resp"] <= 5).all()


@pytest.mark.parametrize(
    "options", [{"tmax": 5}, {"n_classes": 11}, {"t_max": 2.5}, {"dataset": "cifar10"}]
)
def test_bad_reset_options_raise_valueerror_naming_them(options):
    env = gym.make("DelayedRecall-MNIST-v0")
    key = next(iter(options))
    with pytest.raises(ValueError, match=key):
        env.reset(options=options)
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=2)
    with pytest.raises(ValueError, match=key):
        vec.reset(options=options)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_classes": 0}, "n_classes"),
        ({"null_penalty": -1}, "null_penalty"),
        ({"render_mode": "ansi"}, "render_mode"),
        ({"tmax": 3}, "tmax"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        gym.make("DelayedRecall-MNIST-v0", **kwargs)


def test_bad_actions():
    env = gym.make("DelayedRecall-MNIST-v0")
    env.reset(seed=0)
    with pytest.raises((ValueError, AssertionError)):
        env.step(11)
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=2)
    vec.reset(seed=0)
    for bad in (np.array([0, 12]), np.array([-1, 0]), np.array([0.0, 1.5]), np.zeros(3, int)):
        with pytest.raises(ValueError, match="actions"):
            vec.step(bad)
    vec.step(np.array([10, 0], dtype=np.uint8))  # any integer dtype in range is fine


def test_render_rgb_array_marks_the_trigger():
    env = gym.make("DelayedRecall-MNIST-v0", render_mode="rgb_array")
    _, info = env.reset(seed=1)
    image = env.render()
    assert image.shape == (28, 28, 3) and image.dtype == np.uint8
    while info["t"] != info["t_resp"]:
        _, _, _, _, info = env.step(0)
    assert (env.render()[0, :, 0] == 255).all() and (env.render()[0, :, 1] == 0).all()


def test_envs_pickle_and_continue_identically():
    env = gym.make("DelayedRecall-MNIST-v0")
    env.reset(seed=4)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(env.step(0)[0], clone.step(0)[0])
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=3)
    vec.reset(seed=4)
    vclone = pickle.loads(pickle.dumps(vec))
    np.testing.assert_array_equal(vec.step(np.zeros(3, int))[0], vclone.step(np.zeros(3, int))[0])


def test_extrapolation_episode_with_a_long_delay():
    env = gym.make("DelayedRecall-MNIST-v0", delay=300, t_stim=0, n_steps=301)
    obs, info = env.reset(seed=0)
    assert info["t_resp"] == 300
    for _ in range(300):
        obs, _, _, _, info = env.step(0)
    assert obs[-1] == 1.0 and info["is_response"]


def test_vector_env_matches_single_envs_across_frame_chunks():
    """Frames, targets and loss weights are drawn per chunk of FRAME_CHUNK steps; a 150-step
    episode spans three chunks and ends with a terminal step that has no frame."""
    kwargs = {"delay": 130, "t_stim": 2, "n_steps": 150}
    vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=3, **kwargs)
    singles = [gym.make("DelayedRecall-MNIST-v0", **kwargs) for _ in range(3)]
    obs, info = vec.reset(seed=5)
    expected = [env.reset(seed=5 + i) for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack([o for o, _ in expected]))
    for _ in range(150):
        obs, rewards, terminated, _, info = vec.step(np.zeros(3, np.int64))
        results = [env.step(0) for env in singles]
        np.testing.assert_array_equal(obs, np.stack([r[0] for r in results]))
        for key in ("t", "target", "is_response", "loss_weight"):
            np.testing.assert_array_equal(info[key], [r[4][key] for r in results])
    assert terminated.all() and info["t"].tolist() == [150] * 3
    assert info["loss_weight"].tolist() == [0.0] * 3


def test_the_task_needs_memory():
    """The best memoryless policy knows every image's label but sees noise at t_resp, so it is
    at chance; the same policy with a one-item memory is perfect."""
    env = gym.make("DelayedRecall-MNIST-v0", n_classes=4)
    pool = env.unwrapped.task.images
    lookup = {row.tobytes(): index // pool.n_per_class for index, row in enumerate(pool.images_nxp)}

    def recognise(obs):
        pixels = np.round(obs[:-1] * 255)
        if pixels.min() < 0 or pixels.max() > 255:
            return None
        return lookup.get(pixels.astype(np.uint8).tobytes())

    def accuracy(memory: bool, episodes: int, seed: int) -> float:
        rng = np.random.default_rng(seed)
        correct = 0
        obs, info = env.reset(seed=seed)
        for _ in range(episodes):
            remembered = None
            terminated = False
            while not terminated:
                seen = recognise(obs)
                if memory and seen is not None:
                    remembered = seen
                if obs[-1] == 1.0:
                    guess = remembered if remembered is not None else int(rng.integers(0, 4))
                    action = guess + 1
                else:
                    action = 0
                obs, reward, terminated, _, info = env.step(action)
                correct += reward
            obs, info = env.reset()
        return correct / episodes

    assert accuracy(memory=True, episodes=50, seed=0) == 1.0
    memoryless = accuracy(memory=False, episodes=800, seed=1)
    assert 0.25 - 0.06 < memoryless < 0.25 + 0.06  # chance is 1/4; 4 sigma is 0.06
