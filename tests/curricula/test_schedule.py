"""Fixed schedules: the paper's boundaries, scaling, validation, serialisation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import curricula
from curricula import Schedule, Stage, get_schedule, schedule_from_dict
from memenv.config import TaskConfig

MNIST_DECU = [(0, 6), (20_000, 8), (30_000, 10), (40_000, 12), (50_000, 14), (60_000, 16)]
MNIST_DECU += [(70_000, 18), (80_000, 20)]
MNIST_VOCU = [(0, 2), (8_000, 3), (16_000, 4), (26_000, 5), (36_000, 6), (48_000, 7)]
MNIST_VOCU += [(62_000, 8), (78_000, 9), (98_000, 10)]
CIFAR_DECU = [(0, 6)] + [(100_000 + 20_000 * i, 8 + 2 * i) for i in range(7)]
CIFAR_VOCU = [(30_000 * i, 2 + i) for i in range(9)]

PAPER = {
    ("decu", "mnist"): ("t_max", MNIST_DECU, ("n_classes", 10), 140_000),
    ("vocu", "mnist"): ("n_classes", MNIST_VOCU, ("t_max", 20), 140_000),
    ("decu", "cifar10"): ("t_max", CIFAR_DECU, ("n_classes", 10), 300_000),
    ("vocu", "cifar10"): ("n_classes", CIFAR_VOCU, ("t_max", 20), 300_000),
}


def test_cifar_tables_match_the_paper_text():
    # docs/paper.md: CIFAR DeCu "20 from 220k"; VoCu "10 classes (240k-300k)".
    assert CIFAR_DECU[-1] == (220_000, 20) and CIFAR_DECU[1] == (100_000, 8)
    assert CIFAR_VOCU[-1] == (240_000, 10) and CIFAR_VOCU[1] == (30_000, 3)


@pytest.mark.parametrize(("name", "dataset"), sorted(PAPER))
def test_paper_schedules_exact(name, dataset):
    key, table, (other, other_value), total = PAPER[(name, dataset)]
    schedule = get_schedule(name, dataset)
    assert schedule.starts == [start for start, _ in table]
    assert schedule.total_steps == total
    for i, (start, value) in enumerate(table):
        assert schedule.at(start) == {key: value, other: other_value}
        assert schedule.stage_index(start) == i
        if start:
            assert schedule.at(start - 1)[key] == table[i - 1][1]
    assert schedule.at(10**9)[key] == table[-1][1]


def test_fashion_mnist_uses_the_mnist_schedules():
    assert curricula.decu("fashion-mnist").stages == curricula.decu("mnist").stages
    assert curricula.vocu("fashion-mnist").stages == curricula.vocu("mnist").stages


def test_none_sets_nothing():
    schedule = curricula.none()
    assert schedule.at(0) == {} and schedule.at(10**7) == {}
    assert schedule.n_stages == 1 and schedule.total_steps == 140_000
    assert curricula.none("cifar10", scale=0.01).total_steps == 3_000


@pytest.mark.parametrize("scale", [0.001, 0.01, 0.37, 1.0, 2.5])
@pytest.mark.parametrize("name", ["vocu", "decu", "recu"])
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_scale_compresses_boundaries_proportionally(name, dataset, scale):
    full = get_schedule(name, dataset)
    scaled = get_schedule(name, dataset, scale=scale)
    assert scaled.starts == [int(start * scale + 0.5) for start in full.starts]
    assert scaled.total_steps == int(full.total_steps * scale + 0.5)
    assert scaled.stage_settings() == full.stage_settings()


def test_scale_too_small_raises_naming_the_stages():
    with pytest.raises(ValueError, match="too small.*stages 0 and 1"):
        curricula.vocu(scale=1e-5)


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf"), True, "1"])
def test_bad_scale_raises(scale):
    with pytest.raises(ValueError, match="scale"):
        curricula.decu(scale=scale)


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ([(0, {"t_max": 6}), (10, {"t_max": 8}), (5, {"t_max": 10})], "out of order: stage 2"),
        ([(0, {"t_max": 6}), (10, {"t_max": 8}), (10, {"t_max": 10})], "out of order: stage 2"),
        ([(5, {"t_max": 6})], "stage 0 starts at 5"),
        ([(0, {"t_max": 6}), (-3, {})], "stage 1 start"),
        ([(0, {"t_max": 6}), (2.5, {})], "stage 1 start"),
        ([(0, {"n_clases": 3})], r"stage 0.*unknown setting.*n_clases"),
        ([(0, {"dataset": "cifar10"})], r"unknown setting.*dataset"),
        ([(0, {"t_max": 6}), (9, {"t_max": 30})], r"stage 1 \(start 9\).*t_max"),
        ([(0, {"n_classes": 11})], r"stage 0.*n_classes"),
        ([(0, {"n_classes": 0})], r"stage 0.*n_classes"),
        ([(0, {"t_max": 4})], r"stage 0.*t_max"),
        ([(0, {"noise_scale": -1.0})], "noise_scale"),
        ([(0, {"n_classes": "4"})], "n_classes"),
        ([(0, ["t_max", 6])], "stage 0: settings must be a mapping"),
        ([(0,)], "stage 0 must be a Stage or a"),
        ([], "no stages"),
    ],
)
def test_bad_schedules_raise_value_error(stages, match):
    with pytest.raises(ValueError, match=match):
        Schedule(stages, name="bad")


def test_values_are_checked_against_the_base_config():
    stages = [(0, {"t_max": 30})]
    with pytest.raises(ValueError, match="t_max"):
        Schedule(stages)
    schedule = Schedule(stages, base=TaskConfig(n_steps=40))
    assert schedule.at(0) == {"t_max": 30}
    with pytest.raises(ValueError, match="t_max"):
        schedule.validate(TaskConfig(n_steps=25))
    with pytest.raises(ValueError, match="t_max"):
        curricula.vocu().validate(TaskConfig(n_steps=10, t_max=10))
    with pytest.raises(ValueError, match="t_max"):
        curricula.decu().validate(TaskConfig(min_delay=6))


def test_settings_accumulate_over_stages():
    schedule = Schedule([(0, {"n_classes": 2, "t_max": 8}), (5, {"t_max": 12}), (9, {})])
    assert schedule.at(4) == {"n_classes": 2, "t_max": 8}
    assert schedule.at(5) == {"n_classes": 2, "t_max": 12}
    assert schedule.at(9) == {"n_classes": 2, "t_max": 12}
    returned = schedule.at(9)
    returned["t_max"] = 99
    assert schedule.at(9)["t_max"] == 12  # callers get copies
    with pytest.raises(TypeError):
        schedule.stages[0].settings["t_max"] = 20  # read-only


def test_at_rejects_bad_steps():
    schedule = curricula.decu()
    for step in (-1, 1.5, None, True):
        with pytest.raises(ValueError, match="step"):
            schedule.at(step)


def test_fixed_schedule_protocol_methods():
    schedule = curricula.vocu()
    assert isinstance(schedule, curricula.Curriculum) and not schedule.is_adaptive
    assert schedule.observe(5, 3, 4) is False
    assert schedule.state_dict() == {}
    schedule.load_state_dict({})
    with pytest.raises(ValueError, match="no state"):
        schedule.load_state_dict({"stage": 2})
    with pytest.raises(ValueError, match="n_correct"):
        schedule.observe(5, 5, 4)


@pytest.mark.parametrize("name", ["none", "vocu", "decu", "recu", "adaptive-vocu", "adaptive-decu"])
def test_to_dict_round_trip_through_json(name):
    schedule = get_schedule(name, "cifar10", scale=0.1)
    data = json.loads(json.dumps(schedule.to_dict()))
    rebuilt = schedule_from_dict(data)
    assert rebuilt.to_dict() == schedule.to_dict()
    assert rebuilt.stage_settings() == schedule.stage_settings()


def test_get_schedule_names_and_errors():
    assert get_schedule("DeCu").name == "decu"
    assert get_schedule("adaptive_vocu").name == "adaptive-vocu"
    schedule = curricula.decu()
    assert get_schedule(schedule) is schedule
    with pytest.raises(ValueError, match="unknown schedule 'warmup'"):
        get_schedule("warmup")
    with pytest.raises(ValueError, match="unknown dataset"):
        get_schedule("vocu", "svhn")
    with pytest.raises(ValueError, match="takes no options"):
        get_schedule("vocu", threshold=0.5)
    with pytest.raises(ValueError, match="only apply"):
        get_schedule(schedule, scale=0.5)
    with pytest.raises(ValueError, match="unknown schedule kind"):
        schedule_from_dict({"kind": "cosine"})


def test_stage_objects_are_accepted():
    schedule = Schedule([Stage(0, {"t_max": 6}), Stage(3, {"t_max": 8})], name="s")
    assert schedule == Schedule([(0, {"t_max": 6}), (3, {"t_max": 8})], name="s")
    assert "Schedule('s'" in repr(schedule)


# ---------------------------------------------------------------------------- properties
stage_settings = st.fixed_dictionaries(
    {},
    optional={
        "n_classes": st.integers(1, 10),
        "t_max": st.integers(5, 20),
        "noise_scale": st.floats(0.0, 2.0),
    },
)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 1000), min_size=0, max_size=8),
    values=st.lists(stage_settings, min_size=9, max_size=9),
    probe=st.integers(0, 10_000),
)
def test_at_is_the_last_stage_started(gaps, values, probe):
    starts = [0]
    for gap in gaps:
        starts.append(starts[-1] + gap)
    schedule = Schedule(list(zip(starts, values, strict=False)))
    expected: dict = {}
    for start, stage in zip(starts, values, strict=False):
        if start <= probe:
            expected.update(stage)
    assert schedule.at(probe) == expected


@settings(max_examples=60, deadline=None)
@given(starts=st.lists(st.integers(0, 100), min_size=2, max_size=6))
def test_unsorted_or_repeated_starts_always_raise(starts):
    stages = [(start, {}) for start in starts]
    valid = starts[0] == 0 and all(b > a for a, b in zip(starts, starts[1:], strict=False))
    if valid:
        assert Schedule(stages).starts == starts
    else:
        with pytest.raises(ValueError, match="stage"):
            Schedule(stages)


@settings(max_examples=60, deadline=None)
@given(key=st.text(min_size=1, max_size=12))
def test_unknown_keys_always_raise(key):
    if key in TaskConfig.__dataclass_fields__ and key in curricula.schedule.EPISODE_FIELDS:
        return
    with pytest.raises(ValueError, match="unknown setting"):
        Schedule([(0, {key: 1})])
