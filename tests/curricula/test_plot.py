"""plot_schedule draws classes and T_max as step functions of the training step."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

import curricula
from curricula import plot_schedule, schedule_steps
from memenv.config import TaskConfig


def test_schedule_steps_of_decu():
    steps, classes, t_max = schedule_steps(curricula.decu())
    assert steps == [0, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 140_000]
    assert t_max == [6, 8, 10, 12, 14, 16, 18, 20, 20]
    assert classes == [10] * 9


def test_schedule_steps_resolve_unset_fields_over_the_base():
    steps, classes, t_max = schedule_steps(curricula.none(), base=TaskConfig(n_classes=4))
    assert (steps, classes, t_max) == ([0, 140_000], [4, 4], [20, 20])
    with pytest.raises(ValueError, match="after the last stage"):
        schedule_steps(curricula.vocu(), total_steps=50_000)


def test_plot_returns_a_figure_with_both_curves_and_overlays():
    figure = plot_schedule(curricula.vocu(), color="C0")
    assert isinstance(figure, Figure)
    ax_classes, ax_t_max = figure.axes
    plot_schedule(curricula.decu(), axes=(ax_classes, ax_t_max), label="DeCu")
    assert len(ax_classes.lines) == 2 and len(ax_t_max.lines) == 2
    x, y = ax_classes.lines[0].get_data()
    np.testing.assert_array_equal(x[:3], [0, 8_000, 16_000])
    np.testing.assert_array_equal(y[:3], [2, 3, 4])
    assert ax_t_max.lines[1].get_label() == "DeCu"
    assert ax_t_max.get_xlabel() == "training step"


def test_plot_adaptive_draws_the_stages_entered():
    schedule = curricula.AdaptiveSchedule([{"t_max": 8}, {"t_max": 14}], window=1)
    schedule.observe(30, 1, 1)
    steps, _, t_max = schedule_steps(schedule, total_steps=60)
    assert (steps, t_max) == ([0, 31, 60], [8, 14, 14])
    assert isinstance(plot_schedule(schedule, total_steps=60), Figure)


def test_paper_figure_has_both_data_sets():
    figure = curricula.plot_paper_schedules()
    assert len(figure.axes) == 4
    assert [ax.get_title() for ax in figure.axes[:2]] == ["MNIST", "CIFAR-10"]
    assert all(len(ax.lines) == 2 for ax in figure.axes)
    x, y = figure.axes[3].lines[1].get_data()  # CIFAR-10 DeCu T_max
    assert (x[1], y[1], x[-2], y[-2]) == (100_000, 8, 220_000, 20)
