import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memenv.config import EPISODE_FIELDS, TaskConfig

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
def test_any_value_either_builds_or_raises_valueerror(field, value):
    try:
        config = TaskConfig(**{field: value})
    except ValueError as error:
        assert field in str(error)
    else:
        assert getattr(config, field) == value


@given(options=st.dictionaries(st.text(max_size=12), ANYTHING, max_size=3))
def test_episode_options_raise_only_valueerror(options):
    try:
        config = TaskConfig().with_episode_options(options)
    except ValueError as error:
        bad_keys = [k for k in options if k not in EPISODE_FIELDS]
        named = bad_keys or list(options)
        assert any(repr(k) in str(error) or str(k) in str(error) for k in named)
    else:
        for key, value in options.items():
            assert getattr(config, key) == value


def test_replace_rejects_unknown_fields():
    with pytest.raises(ValueError, match="tmax"):
        TaskConfig().replace(tmax=3)
