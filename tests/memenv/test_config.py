import dataclasses
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memenv.config import (
    DEFAULT_MAX_BYTES,
    EPISODE_FIELDS,
    MAX_N_STEPS,
    TaskConfig,
    check_bytes,
    max_bytes,
)
from memenv.errors import UsageError

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


def test_defaults_are_the_paper_protocol():
    config = TaskConfig()
    assert (config.n_steps, config.t_max, config.min_delay, config.n_classes) == (20, 20, 4, 10)
    assert config.latest_stim == 15  # t_s ~ U{0..T_max - 5}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dataset", "svhn"),
        ("split", "val"),
        ("n_steps", 1),
        ("t_max", 21),
        ("t_max", 4),
        ("min_delay", 0),
        ("n_classes", 0),
        ("n_classes", 11),
        ("noise_scale", -0.1),
        ("noise_scale", float("nan")),
        ("delay", 0),
        ("n_classes", 2.0),
        ("n_classes", True),
        ("null_weight", -0.25),
        ("null_weight", 1.25),
        ("null_weight", float("nan")),
        ("null_weight", float("inf")),
        ("null_weight", 10**400),
        ("null_weight", True),
        ("null_weight", "0.5"),
        ("null_weight", None),
    ],
)
def test_bad_values_raise_valueerror_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TaskConfig(**{field: value})


def test_fixed_delay_needs_room_in_the_trial():
    with pytest.raises(ValueError, match="n_steps >= 2016"):
        TaskConfig(delay=2000)
    config = TaskConfig(delay=2000, t_stim=0, n_steps=2001)
    assert config.latest_stim + config.delay == 2000


def test_t_stim_without_delay_is_rejected():
    with pytest.raises(ValueError, match="t_stim"):
        TaskConfig(t_stim=3)


@given(field=st.sampled_from([f.name for f in dataclasses.fields(TaskConfig)]), value=ANYTHING)
def test_any_value_either_builds_or_raises_a_usage_error(field, value):
    try:
        config = TaskConfig(**{field: value})
    except UsageError as error:
        assert field in str(error)
    else:
        assert getattr(config, field) == value


@given(options=st.dictionaries(st.text(max_size=12), ANYTHING, max_size=3))
def test_episode_options_raise_only_usage_errors(options):
    try:
        config = TaskConfig().with_episode_options(options)
    except UsageError as error:
        bad_keys = [k for k in options if k not in EPISODE_FIELDS]
        named = bad_keys or list(options)
        assert any(repr(k) in str(error) or str(k) in str(error) for k in named)
    else:
        for key, value in options.items():
            assert getattr(config, key) == value


def test_replace_rejects_unknown_fields():
    with pytest.raises(ValueError, match="tmax"):
        TaskConfig().replace(tmax=3)


def test_numpy_values_are_stored_as_plain_python_types():
    config = TaskConfig(n_steps=np.int64(30), n_classes=np.uint8(3), noise_scale=np.float32(0.5))
    assert (config.n_steps, config.n_classes, config.noise_scale) == (30, 3, 0.5)
    assert type(config.n_steps) is int and type(config.n_classes) is int
    assert type(config.noise_scale) is float
    assert config == TaskConfig(n_steps=30, n_classes=3, noise_scale=0.5)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_steps", MAX_N_STEPS + 1, f"n_steps must be in \\[2, {MAX_N_STEPS}\\]"),
        ("n_steps", np.uint64(2**64 - 1), "n_steps must be in"),
        ("noise_scale", 10**400, "noise_scale must be a real number"),
        ("noise_scale", np.float16("inf"), "noise_scale must be a real number"),
        ("delay", 2**100, "needs n_steps >= "),
        ("dataset", np.array(["mnist"]), "dataset must be one of"),
        ("split", ["train"], "split must be one of"),
    ],
)
def test_huge_and_odd_values_are_usage_errors(field, value, message):
    """No OverflowError from float(10**400), no element-wise comparison of an array."""
    with pytest.raises(UsageError, match=message):
        TaskConfig(**{field: value})


def test_the_longest_trial_is_accepted():
    config = TaskConfig(n_steps=MAX_N_STEPS, delay=MAX_N_STEPS - 1, t_stim=0)
    assert config.latest_stim + config.delay == MAX_N_STEPS - 1


@pytest.mark.parametrize("options", ["x", [], (), 5, [("n_steps", 30)], {"n_classes"}])
def test_episode_options_must_be_none_or_a_mapping(options):
    with pytest.raises(UsageError, match="options must be None or a dict .* got "):
        TaskConfig().with_episode_options(options)


def test_empty_or_mapping_options():
    config = TaskConfig()
    assert config.with_episode_options(None) is config
    assert config.with_episode_options({}) is config
    assert config.with_episode_options(MappingProxyType({"n_classes": 2})).n_classes == 2


@pytest.mark.parametrize(
    ("raw", "limit"), [(None, DEFAULT_MAX_BYTES), ("", DEFAULT_MAX_BYTES), ("1_000", 1000)]
)
def test_max_bytes_reads_the_environment(monkeypatch, raw, limit):
    if raw is None:
        monkeypatch.delenv("MEMENV_MAX_BYTES", raising=False)
    else:
        monkeypatch.setenv("MEMENV_MAX_BYTES", raw)
    assert max_bytes() == limit


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "1e9", "4GB"])
def test_bad_max_bytes_is_a_usage_error_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("MEMENV_MAX_BYTES", raw)
    with pytest.raises(UsageError, match=f"MEMENV_MAX_BYTES must be a positive integer .*{raw}"):
        max_bytes()


def test_check_bytes_names_the_request_the_size_and_the_limit(monkeypatch):
    monkeypatch.setenv("MEMENV_MAX_BYTES", "1000")
    check_bytes(1000, "a request")
    with pytest.raises(UsageError) as caught:
        check_bytes(1001, "a request of 7 things")
    message = str(caught.value)
    assert message.startswith("a request of 7 things would allocate about ")
    assert "(1,001 bytes)" in message and "over the limit of 9.31e-07 GiB (1,000 bytes)" in message


def test_null_weight_is_an_episode_field_in_zero_to_one_stored_as_float():
    assert "null_weight" in EPISODE_FIELDS
    assert TaskConfig().null_weight == 1.0 and TaskConfig().response_weight == 20.0
    for value, stored in ((0, 0.0), (np.float32(0.25), 0.25), (1, 1.0)):
        config = TaskConfig(null_weight=value)
        assert config.null_weight == stored and type(config.null_weight) is float
    assert TaskConfig(null_weight=0.25).response_weight == 19.25
    config = TaskConfig().with_episode_options({"null_weight": 0.5})
    assert (config.null_weight, config.response_weight) == (0.5, 19.5)
    with pytest.raises(UsageError, match=r"null_weight must be a real number in \[0, 1\], got 2"):
        TaskConfig().with_episode_options({"null_weight": 2})
