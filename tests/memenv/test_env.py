import pickle
import re
import tracemalloc
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import memenv
import memenv.task
from memenv.config import DEFAULT_MAX_BYTES, format_bytes
from memenv.env import DelayedRecallEnv
from memenv.errors import ArgumentTypeError, MemenvError, UsageError
from memenv.vector_env import DelayedRecallVectorEnv, vector_env_bytes

# Unbounded Gaussian noise means infinite pixel bounds; Gymnasium notes that, nothing more.
KNOWN_BOUND_NOTES = ("minimum value is -infinity", "maximum value is infinity")


pytestmark = pytest.mark.usefixtures("embedded_images_once")


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


def test_null_weight_changes_the_reported_loss_weight_and_not_the_reward():
    """Both envs report ``null_weight`` / ``19 + null_weight`` in info; rewards are the same."""
    actions = np.random.default_rng(0).integers(1, 11, (2, 3))  # non-null: penalised
    outcomes = {}
    for null_weight in (1.0, 0.25):
        env = gym.make("DelayedRecall-MNIST-v0", t_max=16, null_penalty=0.5)
        _, info = env.reset(seed=4, options={"null_weight": null_weight})
        vec = gym.make_vec("DelayedRecall-MNIST-v0", num_envs=2, t_max=16, null_penalty=0.5)
        _, vinfo = vec.reset(seed=4, options={"null_weight": null_weight})
        weights, vweights, rewards, vrewards = [info["loss_weight"]], [vinfo["loss_weight"]], [], []
        for t in range(20):
            # a few penalised actions, then the right answer (rewarded at t_resp)
            _, reward, _, _, info = env.step(int(actions[0, t]) if t < 3 else info["target"])
            weights.append(info["loss_weight"])
            rewards.append(reward)
            _, vreward, _, _, vinfo = vec.step(actions[:, t] if t < 3 else vinfo["target"])
            vweights.append(vinfo["loss_weight"])
            vrewards.append(vreward)
        t_resp = int(info["t_resp"])
        expected = [null_weight if t < 16 else 0.0 for t in range(21)]
        expected[t_resp] = 19.0 + null_weight
        assert weights == expected
        vweights = np.array(vweights)  # [21, 2]
        assert vweights.dtype == np.float32
        assert vweights[:, 0].tolist() == expected  # sub-env 0 is the single env seeded alike
        assert set(vweights[:16, 1].tolist()) == {null_weight, 19.0 + null_weight}
        assert env.unwrapped.config.null_weight == null_weight  # the option persists
        outcomes[null_weight] = (rewards, np.array(vrewards))
    assert outcomes[1.0][0] == outcomes[0.25][0]
    assert sorted(set(outcomes[1.0][0])) == [-0.5, 0.0, 1.0]
    np.testing.assert_array_equal(outcomes[1.0][1], outcomes[0.25][1])


@pytest.mark.parametrize(
    "options",
    [{"tmax": 5}, {"n_classes": 11}, {"t_max": 2.5}, {"dataset": "cifar10"}, {"null_weight": 1.5}],
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
    assert image.shape == (272, 224, 3) and image.dtype == np.uint8
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


# ---------------------------------------------------------------------------- hardening
ENV_ID = "DelayedRecall-MNIST-v0"


# One action rule for both envs: (action, accepted).
ACTION_TABLE = [
    (0, True),
    (10, True),
    (3, True),
    *[(t(2), True) for t in (np.int8, np.int16, np.int32, np.int64)],
    *[(t(2), True) for t in (np.uint8, np.uint16, np.uint32, np.uint64)],
    (np.array(2), True),
    (np.array(10, dtype=np.uint64), True),
    (True, False),
    (False, False),
    (np.True_, False),
    (np.array(True), False),
    (2.0, False),
    (np.float32(2.0), False),
    (np.float64(2.0), False),
    (np.array(2.0), False),
    ("2", False),
    (None, False),
    (-1, False),
    (11, False),
    (np.uint64(2**64 - 1), False),
    (2**70, False),
    (np.array([2]), False),
    ([2], False),
]


@pytest.mark.parametrize(("action", "accepted"), ACTION_TABLE, ids=repr)
def test_single_and_vector_envs_take_the_same_actions(action, accepted):
    """The single env takes ``action``, and the vector env ``[action, action]`` as a list and
    as a numpy array (whose dtype follows the action's type), exactly when the rule says so;
    refusals are UsageErrors that show the value (and its type, when the type is wrong)."""
    env = gym.make(ENV_ID)
    vec = gym.make_vec(ENV_ID, num_envs=2)
    env.reset(seed=0)
    vec.reset(seed=0)
    calls = {
        "single": lambda: env.step(action),
        "list": lambda: vec.step([action, action]),
        "array": lambda: vec.step(np.array([action, action])),
    }
    for how, call in calls.items():
        if accepted:
            info = call()[4]
            assert np.all(np.asarray(info["t"]) == 1), how
            env.reset(seed=0)
            vec.reset(seed=0)
            continue
        with pytest.raises(UsageError) as caught:
            call()
        message = str(caught.value)
        assert "action" in message, how
        if how == "single":
            assert repr(action) in message
            if not isinstance(action, int) or isinstance(action, bool):
                assert type(action).__name__ in message


def test_vector_env_actions_any_integer_dtype_and_nothing_else():
    vec = gym.make_vec(ENV_ID, num_envs=3)
    vec.reset(seed=0)
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        _, rewards, _, _, info = vec.step(np.array([0, 5, 10], dtype=dtype))
        assert rewards.shape == (3,)
    for dtype in (bool, np.float16, np.float32, np.float64, object, str):
        actions = np.zeros(3, dtype=dtype)
        with pytest.raises(UsageError, match=re.escape(f"dtype {actions.dtype})")):
            vec.step(actions)
    for shape in [(), (2,), (4,), (3, 1), (1, 3)]:
        with pytest.raises(UsageError, match=r"shape \(3,\)"):
            vec.step(np.zeros(shape, dtype=np.int64))
    with pytest.raises(UsageError, match=r"actions\[1\] must be an integer in \[0, 10\], got 11"):
        vec.step(np.array([0, 11, 12], dtype=np.uint8))
    with pytest.raises(UsageError, match=r"actions\[2\] .* got True \(bool\)"):
        vec.step([0, 1, True])
    t = info["t"].copy()
    assert (vec.step(np.zeros(3, np.int64))[4]["t"] == t + 1).all()  # refusals changed nothing


def test_actions_are_checked_on_the_autoreset_step_too():
    vec = gym.make_vec(ENV_ID, num_envs=2, n_steps=5, t_max=5, min_delay=1)
    vec.reset(seed=0)
    for _ in range(5):
        vec.step(np.zeros(2, np.int64))
    with pytest.raises(UsageError, match="actions"):
        vec.step(np.array([0.0, 0.0]))  # the step that only resets still refuses floats


# Seeds and options both envs refuse, with identical messages.
BAD_SEEDS = ["x", -1, -(2**70), 1.5, np.float64(2.0), True, np.True_, b"1", {"a": 1}, np.array(3)]
BAD_OPTIONS = [
    "x",
    [],
    (),
    5,
    [("n_steps", 30)],
    {"tmax": 5},
    {1: 2},
    {"dataset": "cifar10"},
    {"split": "test"},
    {"n_classes": True},
    {"n_classes": 11},
    {"t_max": 2.5},
    {"noise_scale": float("nan")},
    {"n_steps": 2**40},
    {"delay": 5},
]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_bad_seeds_are_refused_alike_by_both_envs(seed):
    env = gym.make(ENV_ID)
    vec = gym.make_vec(ENV_ID, num_envs=2)
    errors = []
    for target in (env, vec):
        with pytest.raises(MemenvError) as caught:
            target.reset(seed=seed)
        errors.append(caught.value)
    assert type(errors[0]) is type(errors[1]) and str(errors[0]) == str(errors[1])
    assert str(errors[0]).startswith("seed must be None or a non-negative integer, got ")
    assert repr(seed)[:20] in str(errors[0])


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=repr)
def test_bad_options_are_refused_alike_by_both_envs(options):
    env = gym.make(ENV_ID)
    vec = gym.make_vec(ENV_ID, num_envs=2)
    errors = []
    for target in (env, vec):
        with pytest.raises(UsageError) as caught:
            target.reset(seed=0, options=options)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    named = list(options) if isinstance(options, dict) else ["options"]
    assert any(str(name) in errors[0] for name in named)


@pytest.mark.parametrize("seeds", [[1], [1, 2, 3], [1, -1], [1, "x"], [True, 1], (None, 1.0)])
def test_bad_seed_lists_are_refused_naming_the_seed(seeds):
    vec = gym.make_vec(ENV_ID, num_envs=2)
    with pytest.raises(MemenvError, match=r"seed"):
        vec.reset(seed=seeds)
    with pytest.raises(MemenvError, match=r"seed must be None or a non-negative integer"):
        gym.make(ENV_ID).reset(seed=seeds)


def test_seeds_of_any_integer_type_seed_alike():
    env = gym.make(ENV_ID)
    vec = gym.make_vec(ENV_ID, num_envs=2)
    first = env.reset(seed=3)[0]
    first_vec = vec.reset(seed=3)[0]
    for seed in (np.int64(3), np.uint8(3), np.array(3, dtype=np.int32)[()]):
        np.testing.assert_array_equal(env.reset(seed=seed)[0], first)
        np.testing.assert_array_equal(vec.reset(seed=seed)[0], first_vec)
    np.testing.assert_array_equal(vec.reset(seed=(np.uint16(3), 4))[0], first_vec)
    env.reset(seed=2**70)  # SeedSequence takes any size
    vec.reset(seed=2**70)


def test_a_refused_reset_changes_nothing():
    env, twin = gym.make(ENV_ID), gym.make(ENV_ID)
    env.reset(seed=1)
    twin.reset(seed=1)
    with pytest.raises(UsageError):
        env.reset(seed=5, options={"n_classes": 2, "tmax": 3})
    with pytest.raises(MemenvError):
        env.reset(seed="5", options={"n_classes": 2})
    np.testing.assert_array_equal(env.reset()[0], twin.reset()[0])
    assert env.unwrapped.config.n_classes == 10
    vec, vec_twin = gym.make_vec(ENV_ID, num_envs=2), gym.make_vec(ENV_ID, num_envs=2)
    vec.reset(seed=1)
    vec_twin.reset(seed=1)
    with pytest.raises(MemenvError):
        vec.reset(seed=[5, "x"], options={"n_classes": 2})
    np.testing.assert_array_equal(vec.reset()[0], vec_twin.reset()[0])
    assert vec.config.n_classes == 10


# Bad keyword arguments of both gym.make and gym.make_vec: (name, value).
BAD_KWARGS = [
    ("n_steps", True),
    ("n_steps", 1),
    ("n_steps", -5),
    ("n_steps", 20.0),
    ("n_steps", float("nan")),
    ("n_steps", float("inf")),
    ("n_steps", 2**31),
    ("n_steps", "20"),
    ("n_steps", None),
    ("t_max", False),
    ("t_max", 21),
    ("t_max", 1),
    ("t_max", 4),
    ("min_delay", 0),
    ("min_delay", 2.0),
    ("min_delay", 20),
    ("n_classes", 0),
    ("n_classes", 11),
    ("n_classes", np.True_),
    ("n_classes", np.float64(3)),
    ("noise_scale", -0.1),
    ("noise_scale", float("nan")),
    ("noise_scale", float("inf")),
    ("noise_scale", 101),
    ("noise_scale", True),
    ("noise_scale", "1"),
    ("noise_scale", 10**400),
    ("noise_scale", np.float16("inf")),
    ("delay", 0),
    ("delay", True),
    ("delay", 2.0),
    ("delay", 10**12),
    ("t_stim", 3),
    ("split", "val"),
    ("split", 3),
    ("split", None),
    ("null_penalty", -1),
    ("null_penalty", float("nan")),
    ("null_penalty", float("inf")),
    ("null_penalty", True),
    ("null_penalty", "0"),
    ("null_penalty", 10**400),
    ("null_penalty", np.float32("inf")),
    ("download", "yes"),
    ("download", "no"),
    ("download", 1),
    ("download", None),
    ("root", 5),
    ("root", b"/tmp"),
    ("root", ["/tmp"]),
    ("root", "a\x00b"),
    ("render_mode", "ansi"),
    ("render_mode", ""),
    ("tmax", 3),
]
BAD_VECTOR_KWARGS = [
    ("num_envs", 0),
    ("num_envs", -3),
    ("num_envs", True),
    ("num_envs", 2.0),
    ("num_envs", "2"),
    ("num_envs", None),
    ("num_envs", 10**12),
    ("autoreset_mode", "sometimes"),
    ("autoreset_mode", 3),
    ("autoreset_mode", None),
    ("autoreset_mode", AutoresetMode.DISABLED),
    ("render_mode", 5),
    ("render_mode", "human"),
]


@pytest.fixture
def no_image_loading(monkeypatch):
    """Fails any test that loads images: arguments must be checked before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("images were loaded before the arguments were checked")

    monkeypatch.setattr(memenv.task, "load_images", refuse)


def assert_names_the_argument(error, name, value):
    text = str(error).split(" was raised from the environment creator")[0]
    assert name in text and repr(value) in text, text


@pytest.mark.filterwarnings("ignore:.*render_mode")
@pytest.mark.parametrize(("name", "value"), BAD_KWARGS, ids=repr)
def test_bad_keyword_arguments_are_refused_up_front(name, value, no_image_loading):
    with pytest.raises(MemenvError) as caught:
        gym.make(ENV_ID, **{name: value})
    assert_names_the_argument(caught.value, name, value)
    with pytest.raises(MemenvError) as caught:
        gym.make_vec(ENV_ID, num_envs=2, **{name: value})
    assert_names_the_argument(caught.value, name, value)


@pytest.mark.parametrize(("name", "value"), BAD_VECTOR_KWARGS, ids=repr)
def test_bad_vector_keyword_arguments_are_refused_up_front(name, value, no_image_loading):
    kwargs = {"num_envs": 2, name: value}
    with pytest.raises(MemenvError) as caught:
        gym.make_vec(ENV_ID, **kwargs)
    assert_names_the_argument(caught.value, name, value)


def test_render_mode_of_the_wrong_type_is_refused_by_the_env_itself():
    """gym.make itself fails on render_mode=5 (Gymnasium calls ``.endswith`` on it before
    making the env); the env's own check refuses it with a clear message."""
    with pytest.raises(UsageError, match="render_mode must be None or one of .*, got 5"):
        DelayedRecallEnv(render_mode=5)


def test_unknown_keyword_is_a_type_error_naming_it_and_listing_the_known_ones():
    with pytest.raises(ArgumentTypeError, match="tmax=3; .* take .*t_max") as caught:
        gym.make(ENV_ID, tmax=3)
    assert isinstance(caught.value, TypeError)
    with pytest.raises(ArgumentTypeError, match="tmax=3; .*num_envs"):
        gym.make_vec(ENV_ID, num_envs=2, tmax=3)


def test_integer_arguments_of_numpy_types_are_stored_as_ints():
    env = gym.make(ENV_ID, n_steps=np.int64(30), n_classes=np.uint8(3), noise_scale=np.float32(1))
    config = env.unwrapped.config
    assert (config.n_steps, config.n_classes) == (30, 3)
    assert type(config.n_steps) is int and type(config.noise_scale) is float
    vec = gym.make_vec(ENV_ID, num_envs=np.int64(3), null_penalty=np.float32(0.5))
    assert vec.num_envs == 3 and type(vec.num_envs) is int and vec.null_penalty == 0.5


def test_absurd_num_envs_is_refused_before_allocating(no_image_loading):
    """num_envs=10**6 used to allocate 8.7 GB and then fail with a MemoryError; the size is
    now computed first, and the refusal names num_envs, the bytes and the limit."""
    tracemalloc.start()
    try:
        for num_envs in (10**6, 10**12):
            with pytest.raises(UsageError) as caught:
                gym.make_vec(ENV_ID, num_envs=num_envs)
            message = str(caught.value)
            assert f"num_envs={num_envs}" in message
            assert f"{vector_env_bytes(num_envs, 785, 20):,} bytes" in message
            assert f"limit of {format_bytes(DEFAULT_MAX_BYTES)}" in message
            assert "MEMENV_MAX_BYTES" in message
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_memory_limit_comes_from_MEMENV_MAX_BYTES(monkeypatch):
    monkeypatch.setenv("MEMENV_MAX_BYTES", str(vector_env_bytes(8, 785, 20)))
    vec = gym.make_vec(ENV_ID, num_envs=8)
    with pytest.raises(UsageError, match="num_envs=9"):
        gym.make_vec(ENV_ID, num_envs=9)
    vec.reset(seed=0)
    with pytest.raises(UsageError, match=r"num_envs=8 \(obs_dim=785, n_steps=64\)"):
        vec.reset(options={"n_steps": 64})  # a longer frame chunk: more memory
    with pytest.raises(UsageError, match="n_steps=64"):
        vec.set_next_episode_options({"n_steps": 64})
    vec.reset()
    assert vec.config.n_steps == 20  # the refused options were not kept
    vec.reset(options={"n_steps": 19, "t_max": 19})  # a shorter chunk is fine
    monkeypatch.setenv("MEMENV_MAX_BYTES", "lots")
    with pytest.raises(UsageError, match="MEMENV_MAX_BYTES must be a positive integer"):
        gym.make_vec(ENV_ID, num_envs=1)


@pytest.mark.parametrize(
    ("num_envs", "n_steps", "mode"),
    [(40, 20, "next_step"), (300, 20, "same_step"), (64, 150, "next_step")],
)
def test_vector_env_memory_estimate_bounds_what_it_allocates(num_envs, n_steps, mode):
    """The up-front estimate is at least the peak a whole episode allocates (traced), and not
    far above it: the limit refuses what would really not fit, and no more."""
    gym.make(ENV_ID)  # images loaded before tracing: they are shared, not per vector env
    tracemalloc.start()
    try:
        vec = gym.make_vec(ENV_ID, num_envs=num_envs, n_steps=n_steps, autoreset_mode=mode)
        vec.reset(seed=0)
        for _ in range(n_steps + 2):
            vec.step(np.zeros(num_envs, np.int64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = vector_env_bytes(num_envs, 785, n_steps)
    assert peak <= estimate <= 1.5 * peak
