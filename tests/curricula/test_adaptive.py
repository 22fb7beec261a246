"""Adaptive schedules: advancing on accuracy, stage-length limits, save and restore."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import curricula
from curricula import AdaptiveSchedule

STAGES = [{"n_classes": 2}, {"n_classes": 5}, {"n_classes": 10, "t_max": 12}]


def make(**kwargs) -> AdaptiveSchedule:
    options = {"threshold": 0.8, "window": 100, **kwargs}
    return AdaptiveSchedule(STAGES, name="test", **options)


def test_advances_when_window_accuracy_reaches_threshold():
    schedule = make()
    assert schedule.at(0) == {"n_classes": 2} and schedule.stage_index(123) == 0
    assert schedule.observe(0, 50, 50) is False  # window not full yet
    assert schedule.observe(1, 29, 50) is False  # 79 / 100 < 0.8
    assert schedule.window_accuracy == pytest.approx(0.79)
    assert schedule.observe(2, 50, 50) is False  # the last 100 trials: 79 / 100 again
    assert schedule.observe(3, 30, 50) is True  # 80 / 100
    assert schedule.stage == 1 and schedule.stage_start == 4
    assert schedule.at(4) == {"n_classes": 5}
    assert schedule.window_trials == 0  # a new stage is judged on its own trials


def test_window_keeps_the_most_recent_whole_reports():
    schedule = make(window=100)
    for step in range(5):
        schedule.observe(step, 0, 40)  # fails fill the window
    assert schedule.window_trials == 120  # 3 reports: the fewest that hold 100 trials
    assert schedule.observe(5, 40, 40) is False  # 40 / 120
    assert schedule.observe(6, 40, 40) is False  # 80 / 120 = 0.67
    assert schedule.observe(7, 40, 40) is True


def test_min_steps_holds_back_an_early_advance():
    schedule = make(min_steps=5)
    for step in range(4):
        assert schedule.observe(step, 100, 100) is False
    assert schedule.observe(4, 100, 100) is True  # the 5th step of the stage
    assert schedule.stage_start == 5


def test_max_steps_forces_the_advance():
    schedule = make(max_steps=[3, None, None])
    assert schedule.observe(0, 0, 100) is False
    assert schedule.observe(1, 0, 100) is False
    assert schedule.observe(2, 0, 100) is True
    for step in range(3, 50):  # stage 1 has no maximum
        assert schedule.observe(step, 0, 100) is False
    assert schedule.history == [(0, 0), (1, 3)]


def test_per_stage_limits_and_the_last_stage_is_never_left():
    schedule = make(min_steps=[0, 2, 0], max_steps=[1, 4, 1])
    assert schedule.observe(0, 0, 10) is True
    assert schedule.observe(1, 100, 100) is False  # stage 1: min 2 steps
    assert schedule.observe(2, 100, 100) is True
    for step in range(3, 10):
        assert schedule.observe(step, 100, 100) is False
    assert schedule.stage == 2 and schedule.at(99) == {"n_classes": 10, "t_max": 12}


def test_reports_at_the_advance_step_count_for_the_new_stage():
    schedule = make(window=10)
    assert schedule.observe(7, 10, 10) is True
    assert schedule.stage_start == 8
    assert schedule.observe(7, 3, 10) is False  # same step, after the advance: allowed
    assert schedule.window_trials == 10
    with pytest.raises(ValueError, match="backwards"):
        schedule.observe(6, 1, 1)


def test_empty_reports_do_not_fill_the_window():
    schedule = make(window=1)
    assert schedule.observe(0, 0, 0) is False
    assert schedule.window_accuracy is None
    assert schedule.observe(1, 1, 1) is True


def test_save_and_restore_continue_identically():
    reports = [(s, (s * 37) % 11 + 10, 22) for s in range(40)]  # accuracy drifts around 0.7
    reference = make(window=50, threshold=0.7)
    for step, correct, total in reports:
        reference.observe(step, correct, total)
    first = make(window=50, threshold=0.7)
    for step, correct, total in reports[:13]:
        first.observe(step, correct, total)
    state = json.loads(json.dumps(first.state_dict()))
    second = make(window=50, threshold=0.7)
    second.load_state_dict(state)
    assert second.state_dict() == first.state_dict()
    for step, correct, total in reports[13:]:
        second.observe(step, correct, total)
    assert second.state_dict() == reference.state_dict()
    assert reference.stage > 0  # the test really crossed stages


def test_load_state_dict_rejects_foreign_states():
    schedule = make()
    state = schedule.state_dict()
    with pytest.raises(ValueError, match="3 stages"):
        AdaptiveSchedule(STAGES[:2]).load_state_dict(state)
    with pytest.raises(ValueError, match="malformed"):
        schedule.load_state_dict({"stage": 1})
    with pytest.raises(ValueError, match="out of range"):
        schedule.load_state_dict({**state, "stage": 3})
    with pytest.raises(ValueError, match="n_correct"):
        schedule.load_state_dict({**state, "reports": [[5, 4]]})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"min_steps": -1}, "min_steps for stage 0"),
        ({"min_steps": [0, 0]}, "min_steps has 2 entries for 3 stages"),
        ({"max_steps": [None, -2, None]}, "max_steps for stage 1"),
        ({"min_steps": 5, "max_steps": 3}, "stage 0: max_steps=3"),
        ({"max_steps": 0}, "max_steps=0"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ([], "no stages"),
        ([{"n_classes": 2}, {"n_classes": 12}], r"stage 1.*n_classes"),
        ([{"t_mx": 6}], r"stage 0.*unknown setting.*t_mx"),
        ([{"n_classes": 2}, 5], "stage 1 settings must be a mapping"),
    ],
)
def test_bad_stages_raise(stages, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveSchedule(stages)


def test_counts_are_checked():
    schedule = make()
    with pytest.raises(ValueError, match="n_correct"):
        schedule.observe(0, 3, 2)
    with pytest.raises(ValueError, match="n_total"):
        schedule.observe(0, 0, -1)


def test_paper_adaptive_schedules_are_never_slower_than_the_fixed_ones():
    fixed = curricula.vocu("mnist", scale=0.01)
    adaptive = curricula.adaptive_vocu("mnist", scale=0.01)
    assert adaptive.is_adaptive and adaptive.name == "adaptive-vocu"
    assert adaptive.stage_settings() == fixed.stage_settings()
    assert adaptive.window == 1280 and adaptive.threshold == 0.9
    assert list(adaptive.max_steps) == [80, 80, 100, 100, 120, 140, 160, 200, None]
    for step in range(fixed.total_steps):  # a learner that never gets better
        assert adaptive.at(step) == fixed.at(step)
        adaptive.observe(step, 0, 128)
    assert curricula.adaptive_decu("cifar10").window == 640


def test_from_schedule_options():
    fixed = curricula.decu()
    schedule = AdaptiveSchedule.from_schedule(fixed, max_steps=None, min_steps=10)
    assert schedule.max_steps == (None,) * 8 and schedule.min_steps == (10,) * 8
    with pytest.raises(ValueError, match="durations"):
        AdaptiveSchedule.from_schedule(fixed, max_steps="lengths")


@settings(max_examples=40, deadline=None)
@given(
    reports=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20)), max_size=60),
    window=st.integers(1, 60),
    threshold=st.floats(0.05, 1.0),
)
def test_stage_only_moves_forward_one_at_a_time(reports, window, threshold):
    schedule = make(window=window, threshold=threshold, max_steps=[7, 9, None])
    step = 0
    for advance, total in reports:
        step += advance
        before = schedule.stage
        moved = schedule.observe(step, total // 2, total)
        assert schedule.stage == before + int(moved)
        if moved:
            assert schedule.stage_start == step + 1
        assert schedule.window_trials < window + 20 or len(schedule.state_dict()["reports"]) == 1
