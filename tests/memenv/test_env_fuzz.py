"""Fuzzing the envs' whole input surface: constructor arguments, reset seeds and options, actions.

Every input is drawn tagged as good (within the documented rules when taken alone) or bad. A
call must then either behave correctly (the observation is in the space, rewards are in the
documented set, the episode ends after exactly ``n_steps`` actions) or raise a
`memenv.errors.MemenvError` whose message names the argument or shows the value. Any other
exception fails the test, and so does a bad input that is silently accepted. Good inputs may
still be refused together (``t_max`` above ``n_steps``...), but only with a clear error.

The case functions return ``"accepted"`` or ``"refused"`` so that a script can also count
outcomes over the same strategies. Runs are derandomised (the same examples every run) and use
the embedded MNIST subset, loaded once for the module.
"""

from __future__ import annotations

import string

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memenv.config import EPISODE_FIELDS, MAX_N_STEPS, MAX_NOISE_SCALE, N_LABELS, TaskConfig
from memenv.errors import MemenvError

ENV_ID = "DelayedRecall-MNIST-v0"
N_ACTIONS = N_LABELS + 1
LONGEST_EPISODE_STEPPED = 150

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),  # gym.make on a bad render_mode
    pytest.mark.usefixtures("embedded_images_once"),
]

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FUZZ_MANY = settings(FUZZ, max_examples=400)
"""For cases that are refused in microseconds."""


# ------------------------------------------------------------------------------ values
INT_TYPES = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
FLOAT_TYPES = (float, np.float16, np.float32, np.float64)


def ints(low: int, high: int) -> st.SearchStrategy:
    """Integers in ``[low, high]`` of any integer type that holds some of them."""

    def bounds(t: type) -> tuple[int, int]:
        if t is int:
            return low, high
        return max(low, int(np.iinfo(t).min)), min(high, int(np.iinfo(t).max))

    types = [t for t in INT_TYPES if bounds(t)[0] <= bounds(t)[1]]
    return st.sampled_from(types).flatmap(lambda t: st.integers(*bounds(t)).map(t))


def is_str_in(value, choices) -> bool:
    # isinstance first: `in` would compare a numpy array element-wise.
    return isinstance(value, str) and value in choices


def reals(low: float, high: float) -> st.SearchStrategy:
    return st.one_of(
        st.floats(low, high),
        st.sampled_from(FLOAT_TYPES[1:]).flatmap(lambda t: st.floats(low, high, width=32).map(t)),
        st.integers(int(np.ceil(low)), int(high)),
    )


NOT_NUMBERS = st.one_of(
    st.booleans(),
    st.just(np.True_),
    st.text(max_size=3),
    st.binary(max_size=2),
    st.none(),
    st.lists(st.integers(0, 3), max_size=2),
    st.just(np.array(3)),
    st.just(np.array([3])),
    st.just(1 + 2j),
)
NOT_INTS = st.one_of(
    NOT_NUMBERS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(FLOAT_TYPES[1:]).map(lambda t: t(2.0)),
)


def bad_ints(low: int, high: int | None = None) -> st.SearchStrategy:
    """Not an integer, or an integer outside ``[low, high]`` (huge ones included)."""
    outside = [st.integers(max_value=low - 1), st.just(-(2**70))]
    if high is not None:
        outside += [st.integers(min_value=high + 1), st.just(2**70), st.just(np.uint64(2**64 - 1))]
    return st.one_of(NOT_INTS, *outside)


def bad_reals(low: float, high: float | None) -> st.SearchStrategy:
    outside = [st.floats(max_value=low, exclude_max=True), st.just(-np.inf), st.just(np.nan)]
    outside += [st.just(np.float32("nan")), st.just(np.inf), st.just(10**400)]
    outside += [st.sampled_from(FLOAT_TYPES[1:]).map(lambda t: t("inf"))]
    if high is not None:
        outside.append(st.floats(min_value=high, exclude_min=True))
    return st.one_of(NOT_NUMBERS, *outside)


BAD_STRINGS = st.one_of(
    st.text(max_size=6).filter(lambda s: s not in ("train", "test", "rgb_array", "human")),
    st.integers(),
    st.none(),
    st.binary(max_size=3),
    st.just(np.array(["train"])),
    st.just(["train"]),
)

# Arguments of both envs: name -> (good values, bad values). Good values keep episodes short
# enough to step through; `download=True` would go to the network, so it is not drawn.
ENV_FIELDS = {
    "n_steps": (ints(2, LONGEST_EPISODE_STEPPED), bad_ints(2, MAX_N_STEPS)),
    "t_max": (ints(2, 24), bad_ints(2)),
    "min_delay": (ints(1, 8), bad_ints(1)),
    "n_classes": (ints(1, N_LABELS), bad_ints(1, N_LABELS)),
    "noise_scale": (reals(0.0, MAX_NOISE_SCALE), bad_reals(0.0, MAX_NOISE_SCALE)),
    "delay": (st.none() | ints(1, 120), bad_ints(1).filter(lambda v: v is not None)),
    "t_stim": (st.none() | ints(0, 20), bad_ints(0).filter(lambda v: v is not None)),
    "split": (st.sampled_from(["train", "test"]), BAD_STRINGS),
    "null_weight": (reals(0.0, 1.0), bad_reals(0.0, 1.0)),
    "null_penalty": (reals(0.0, 5.0), bad_reals(0.0, None)),
    "download": (
        st.sampled_from([False, np.False_]),
        (NOT_INTS | st.integers()).filter(lambda v: not isinstance(v, bool | np.bool_)),
    ),
    "root": (
        st.none(),
        st.one_of(st.integers(), st.floats(), st.binary(), st.lists(st.text(max_size=2)))
        | st.just("a\x00b"),
    ),
    "render_mode": (
        st.sampled_from([None, "rgb_array"]),
        BAD_STRINGS.filter(lambda v: v is not None and not is_str_in(v, ["rgb_array_list"])),
    ),
}
VECTOR_FIELDS = {
    **ENV_FIELDS,
    "num_envs": (ints(1, 4), bad_ints(1) | st.integers(10**6, 10**30)),
    "autoreset_mode": (
        st.sampled_from(["next_step", "same_step", AutoresetMode.NEXT_STEP]),
        BAD_STRINGS.filter(lambda v: not is_str_in(v, ["next_step", "same_step"]))
        | st.just(AutoresetMode.DISABLED),
    ),
}
# gym.make turns render_mode="human" or "rgb_array_list" into Gymnasium wrappers. Before memenv
# is called it fails inside Gymnasium (1.4) on a non-string render_mode (AttributeError) and
# on one holding "%" (TypeError from its logger's `msg % args`); neither is drawn here.
MAKE_FIELDS = {
    **ENV_FIELDS,
    "render_mode": (
        ENV_FIELDS["render_mode"][0],
        st.text(max_size=6).filter(
            lambda s: s not in ("rgb_array", "human", "rgb_array_list") and "%" not in s
        ),
    ),
}
RESERVED = {"dataset", "max_episode_steps", "disable_env_checker", "vectorization_mode"}
RESERVED |= {"vector_kwargs", "wrappers", "num_envs", "autoreset_mode"}
UNKNOWN_NAMES = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8).filter(
    lambda s: s not in VECTOR_FIELDS and s not in RESERVED
)


def tagged_kwargs(fields: dict) -> st.SearchStrategy:
    """``(kwargs, bad_names)``: some good arguments, and at most one bad or unknown one."""

    @st.composite
    def draw(data):
        names = data(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=5))
        kwargs = {name: data(fields[name][0]) for name in names}
        choice = data(st.sampled_from(["none", "none", "bad", "unknown"]))
        if choice == "bad":
            name = data(st.sampled_from(sorted(fields)))
            kwargs[name] = data(fields[name][1])
            return kwargs, {name}
        if choice == "unknown":
            name = data(UNKNOWN_NAMES)
            kwargs[name] = data(st.integers(0, 3))
            return kwargs, {name}
        return kwargs, set()

    return draw()


# ------------------------------------------------------------------------------ oracles
def message_head(error: MemenvError) -> str:
    """The message memenv wrote (gym.make appends its kwargs to a TypeError's message)."""
    return str(error).split(" was raised from the environment creator")[0]


def assert_clear(error: MemenvError, names, values=()) -> None:
    """The message is non-empty and names one of ``names`` or shows one of ``values``."""
    text = message_head(error)
    assert text.strip(), f"{type(error).__name__} with an empty message"
    shown = [repr(v) for v in values] + [str(v) for v in values if isinstance(v, str)]
    assert any(str(n) in text for n in names) or any(s in text for s in shown), (
        f"{type(error).__name__}: {text!r} names none of {sorted(map(str, names))}"
    )


def reward_set(null_penalty: float) -> set[float]:
    return {0.0, 1.0, -float(null_penalty)}


def play_single(env, n_steps: int, null_penalty: float, rng: np.random.Generator) -> None:
    obs, info = env.reset(seed=int(rng.integers(2**31)))
    assert env.observation_space.contains(obs) and info["t"] == 0
    for t in range(1, n_steps + 1):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(N_ACTIONS)))
        assert type(reward) is float and reward in reward_set(null_penalty)
        assert env.observation_space.contains(obs) and not truncated
        assert terminated == (t == n_steps) and info["t"] == t


def play_vector(envs, n_steps: int, null_penalty: float, rng: np.random.Generator) -> None:
    n = envs.num_envs
    obs, info = envs.reset(seed=int(rng.integers(2**31)))
    assert envs.observation_space.contains(obs) and (info["t"] == 0).all()
    for t in range(1, n_steps + 1):
        obs, rewards, terminated, truncated, info = envs.step(rng.integers(0, N_ACTIONS, n))
        assert set(rewards.tolist()) <= reward_set(null_penalty) and rewards.shape == (n,)
        assert envs.observation_space.contains(obs) and not truncated.any()
        assert (terminated == (t == n_steps)).all()


def task_fields_agree(kwargs: dict) -> bool:
    """Whether `TaskConfig` (tested on its own in test_config.py) takes the task fields
    together: good values may still clash (``t_max`` above ``n_steps``...)."""
    fields = {k: v for k, v in kwargs.items() if k in EPISODE_FIELDS or k == "split"}
    try:
        TaskConfig(**fields)
    except MemenvError:
        return False
    return True


def run_make_case(kwargs: dict, bad: set, vector: bool) -> str:
    """gym.make / gym.make_vec with ``kwargs``: an episode played, or a clear refusal."""
    try:
        env = gym.make_vec(ENV_ID, **kwargs) if vector else gym.make(ENV_ID, **kwargs)
    except MemenvError as error:
        assert_clear(error, kwargs, kwargs.values())
        assert bad or not task_fields_agree(kwargs), f"refused good arguments: {error}"
        return "refused"
    assert not bad, f"silently accepted { ({k: kwargs[k] for k in bad})!r}"
    config = env.unwrapped.config
    play = play_vector if vector else play_single
    play(env, config.n_steps, env.unwrapped.null_penalty, np.random.default_rng(0))
    env.close()
    return "accepted"


@FUZZ
@given(case=tagged_kwargs(MAKE_FIELDS))
def test_fuzz_make_kwargs(case):
    run_make_case(*case, vector=False)


@FUZZ
@given(case=tagged_kwargs(VECTOR_FIELDS))
def test_fuzz_make_vec_kwargs(case):
    kwargs, bad = case
    kwargs.setdefault("num_envs", 2)  # make_vec's own default is 1
    run_make_case(kwargs, bad, vector=True)


@st.composite
def one_bad_argument(data, fields: dict):
    """``(name, value)``: one bad value of one argument, the others left at their defaults."""
    name = data(st.sampled_from(sorted(fields)))
    return name, data(fields[name][1])


def run_bad_argument_case(name: str, value, vector: bool) -> str:
    """One bad argument alone is always refused, clearly, before an episode could start."""
    kwargs = {"num_envs": 2, name: value} if vector else {name: value}
    try:
        gym.make_vec(ENV_ID, **kwargs) if vector else gym.make(ENV_ID, **kwargs)
    except MemenvError as error:
        assert_clear(error, [name], [value])
        return "refused"
    raise AssertionError(f"silently accepted {name}={value!r}")


@FUZZ_MANY
@given(case=one_bad_argument(MAKE_FIELDS))
def test_fuzz_make_one_bad_argument(case):
    run_bad_argument_case(*case, vector=False)


@FUZZ_MANY
@given(case=one_bad_argument(VECTOR_FIELDS))
def test_fuzz_make_vec_one_bad_argument(case):
    run_bad_argument_case(*case, vector=True)


# ------------------------------------------------------------------------------ reset
GOOD_SEEDS = st.none() | st.integers(0, 2**70) | ints(0, 2**31)
BAD_SEEDS = st.one_of(
    st.integers(max_value=-1),
    ints(-(2**31), -1).filter(lambda v: v < 0),
    st.booleans(),
    st.just(np.True_),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.binary(max_size=2),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
    st.just(np.array(3)),
)
EPISODE_VALUES = {name: ENV_FIELDS[name] for name in EPISODE_FIELDS}


@st.composite
def tagged_options(data):
    """``(options, bad)``: None, a dict of per-episode fields, or something bad."""
    kinds = ["none", "good", "good", "bad value", "unknown key", "not a dict"]
    kind = data(st.sampled_from(kinds))
    if kind == "none":
        return None, False
    names = data(st.lists(st.sampled_from(EPISODE_FIELDS), unique=True, max_size=3))
    options = {name: data(EPISODE_VALUES[name][0]) for name in names}
    if kind == "good":
        return options, False
    if kind == "bad value":
        name = data(st.sampled_from(EPISODE_FIELDS))
        options[name] = data(EPISODE_VALUES[name][1])
    elif kind == "unknown key":
        key = data(UNKNOWN_NAMES | st.sampled_from(["dataset", "split", "root"]) | st.integers())
        options[key] = data(st.integers(0, 3))
    else:
        falsy = st.sampled_from([[], (), "", 0, 0.0, set()])  # empty, but still not dicts
        options = data(
            falsy | st.text(max_size=3) | st.lists(st.integers(), max_size=2) | st.integers()
        )
    return options, True


@st.composite
def tagged_seed(data, num_envs: int | None):
    """``(seed, bad)``; for a vector env also lists, of the right length or not."""
    if num_envs is not None and data(st.booleans()):
        length = data(st.sampled_from([num_envs, num_envs, 0, num_envs + 1]))
        items = [data(st.tuples(GOOD_SEEDS, st.just(False))) for _ in range(length)]
        if length and data(st.booleans()):
            items[data(st.integers(0, length - 1))] = (data(BAD_SEEDS), True)
        seeds = [s for s, _ in items]
        return (tuple(seeds) if data(st.booleans()) else seeds), (
            length != num_envs or any(b for _, b in items)
        )
    if data(st.sampled_from([True, True, False])):
        return data(GOOD_SEEDS), False
    if num_envs is None:  # the single env takes no list
        return data(BAD_SEEDS | st.lists(st.integers(0, 3), max_size=3)), True
    return data(BAD_SEEDS), True


def run_reset_case(env, seed, seed_bad: bool, options, options_bad: bool) -> str:
    """``env.reset(seed=..., options=...)``: a first frame, or a clear refusal."""
    try:
        obs, info = env.reset(seed=seed, options=options)
    except MemenvError as error:
        names = ["seed", "options"] + (list(options) if isinstance(options, dict) else [])
        assert_clear(error, names, [seed, options])
        # good options may clash (t_max above n_steps...); a good seed alone must be taken
        assert seed_bad or options_bad or options, f"refused good input: {error}"
        return "refused"
    assert not seed_bad, f"silently accepted seed={seed!r}"
    assert not options_bad, f"silently accepted options={options!r}"
    assert env.observation_space.contains(obs)
    assert np.all(np.asarray(info["t"]) == 0)
    for key, value in (options or {}).items():
        assert getattr(env.unwrapped.config, key) == value
    return "accepted"


@FUZZ
@given(seed=tagged_seed(None), options=tagged_options(), vector_seed=tagged_seed(3))
def test_fuzz_reset_seeds_and_options(seed, options, vector_seed):
    """Each env is reset with the seed alone, the options alone, then both."""
    no_seed, no_options = (None, False), (None, False)
    for env, seed_case in (
        (gym.make(ENV_ID), seed),
        (gym.make_vec(ENV_ID, num_envs=3), vector_seed),
    ):
        for args in ((*seed_case, *no_options), (*no_seed, *options), (*seed_case, *options)):
            run_reset_case(env, *args)


# ------------------------------------------------------------------------------ actions
GOOD_ACTIONS = st.one_of(
    ints(0, N_ACTIONS - 1),
    ints(0, N_ACTIONS - 1).map(np.asarray),  # 0-d integer arrays
)
BAD_ACTIONS = st.one_of(
    st.booleans(),
    st.sampled_from([np.True_, np.False_, np.array(True)]),
    st.sampled_from(FLOAT_TYPES).flatmap(lambda t: st.integers(0, 10).map(t)),  # even 2.0
    st.floats(allow_nan=True),
    st.text(max_size=2),
    st.none(),
    st.integers(max_value=-1),
    st.integers(min_value=N_ACTIONS),
    ints(N_ACTIONS, 2**31),
    st.just(np.uint64(2**64 - 1)),
    st.just(np.array([2])),
    st.just(np.array(2.0)),
    st.just([1]),
)


def tagged(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``(value, bad)``, good values drawn about as often as bad ones."""
    good = good.map(lambda v: (v, False))
    return st.one_of(good, good, bad.map(lambda v: (v, True)))


@st.composite
def tagged_vector_actions(data, n: int):
    """``(actions, bad)`` for ``n`` sub-envs: arrays, lists, tuples, and wrong ones."""
    kind = data(st.sampled_from(["array", "list", "wrong shape", "wrong dtype", "scalar"]))
    if kind == "array":
        dtype = data(st.sampled_from(INT_TYPES[1:]))
        values = data(st.lists(st.integers(0, N_ACTIONS - 1), min_size=n, max_size=n))
        bad = data(st.booleans())
        if bad:
            values[data(st.integers(0, n - 1))] = data(
                st.integers(N_ACTIONS, int(np.iinfo(dtype).max))
                if np.dtype(dtype).kind == "u"
                else st.sampled_from([-1, N_ACTIONS, int(np.iinfo(dtype).max)])
            )
        return np.array(values, dtype=dtype), bad
    if kind == "list":
        items = [data(tagged(GOOD_ACTIONS, BAD_ACTIONS)) for _ in range(n)]
        actions = [a for a, _ in items]
        return (tuple(actions) if data(st.booleans()) else actions), any(b for _, b in items)
    if kind == "wrong shape":
        shape = data(st.sampled_from([(), (n + 1,), (n - 1,), (n, 1), (1, n)]))
        return np.zeros(shape, dtype=np.int64), True
    if kind == "wrong dtype":
        dtype = data(st.sampled_from([bool, np.float16, np.float32, np.float64, object, str]))
        return np.zeros(n, dtype=dtype), True
    return data(st.one_of(GOOD_ACTIONS, BAD_ACTIONS)), True


def run_action_case(env, actions, bad: bool, state: dict) -> str:
    """One step with ``actions``: graded and counted, or a clear refusal that changes nothing."""
    t_before = state["t"]
    try:
        _, reward, terminated, truncated, info = env.step(actions)
    except MemenvError as error:
        assert_clear(error, ["action"], [actions])
        assert bad, f"refused a good action {actions!r}: {error}"
        assert np.all(env.unwrapped._t == t_before), "a refused action advanced the episode"
        return "refused"
    assert not bad, f"silently accepted {actions!r} ({type(actions).__name__})"
    state["t"] += 1
    assert set(np.atleast_1d(reward).tolist()) <= reward_set(0.0)
    assert np.all(np.asarray(terminated) == (state["t"] == state["n_steps"]))
    assert not np.any(truncated) and np.all(np.asarray(info["t"]) == state["t"])
    if state["t"] == state["n_steps"]:
        env.reset()
        state["t"] = 0
    return "accepted"


@FUZZ
@given(actions=st.lists(tagged(GOOD_ACTIONS, BAD_ACTIONS), min_size=1, max_size=12))
def test_fuzz_single_env_actions(actions):
    env = gym.make(ENV_ID, n_steps=5, t_max=5, min_delay=1)
    env.reset(seed=0)
    state = {"t": 0, "n_steps": 5}
    for action, bad in actions:
        run_action_case(env, action, bad, state)


@FUZZ
@given(actions=st.lists(tagged_vector_actions(3), min_size=1, max_size=12))
def test_fuzz_vector_env_actions(actions):
    envs = gym.make_vec(ENV_ID, num_envs=3, n_steps=5, t_max=5, min_delay=1)
    envs.reset(seed=0)
    state = {"t": 0, "n_steps": 5}
    for action, bad in actions:
        run_action_case(envs, action, bad, state)
