"""Speed vs accuracy tables and Spearman correlations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from analysis_toy_models import gru_fixed_point, trigger_reader, zero_recurrent_gru
from scipy import stats

from analysis.slow_points import find_slow_points
from analysis.speed_accuracy import (
    class_accuracy_at_delay,
    class_speed_accuracy,
    class_speeds,
    from_class_tables,
    network_speed_accuracy,
    spearman,
    speeds_at,
)
from memenv import DelayedRecallTask, TaskConfig


def test_spearman_matches_scipy_and_drops_non_finite_pairs():
    x = np.array([1e-9, 1e-6, 1e-3, 1e-1, np.nan, 2.0])
    y = np.array([0.9, 0.8, 0.5, 0.55, 0.1, np.inf])
    got = spearman(x, y)
    want = stats.spearmanr(x[:4], y[:4])
    assert got.n == 4
    assert got.rho == pytest.approx(want.statistic)
    assert got.p_value == pytest.approx(want.pvalue)
    perfect = spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert perfect.rho == pytest.approx(-1.0) and perfect.p_value < 0.05


def test_spearman_undefined_cases_are_nan():
    assert math.isnan(spearman([1, 2], [2, 1]).rho)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]).p_value)
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])


def test_class_and_network_tables():
    table = class_speed_accuracy([1e-8, 1e-4, 1e-2], [0.9, 0.6, 0.2], delay=60)
    assert table.classes.tolist() == [0, 1, 2]
    assert table.correlation.rho == pytest.approx(-1.0)
    data = table.to_dict()
    assert data["delay"] == 60 and data["correlation"]["n"] == 3
    assert "| 2 |" in table.markdown()
    nan_table = class_speed_accuracy([np.nan, 1.0], [0.5, 0.5], classes=[3, 4], delay=5)
    assert nan_table.to_dict()["speeds"][0] is None
    networks = network_speed_accuracy([1e-3, 1e-5, 1e-4], [0.2, 0.9, 0.5], names=["a", "b", "c"])
    assert networks.correlation.rho == pytest.approx(-1.0)
    combined = from_class_tables([table, table, nan_table], names=["x", "y", "z"])
    assert combined.mean_speeds[0] == pytest.approx(np.mean([1e-8, 1e-4, 1e-2]))
    assert combined.delay is None  # mixed delays
    with pytest.raises(ValueError, match="shape"):
        class_speed_accuracy([1, 2], [1], delay=5)
    with pytest.raises(ValueError, match="names"):
        network_speed_accuracy([1, 2], [1, 2], names=["a"])


def test_speeds_at_and_class_speeds():
    model = zero_recurrent_gru(4, 3).double()
    x = torch.tensor([0.2, 0.3, 0.0], dtype=torch.float64)
    h_star, _ = gru_fixed_point(model, x)
    states = np.stack([h_star.detach().numpy(), np.zeros(4), np.full(4, np.nan)])
    q = speeds_at(model, states, x)
    assert q[0] < 1e-28 and q[1] > 1e-6 and np.isnan(q[2])
    points = find_slow_points(model, states[:2], x, initial_labels=[2, 0], eigenvalues=False)
    per_class = class_speeds(points, 3)
    assert per_class[2] == points.speeds[0] and per_class[0] == points.speeds[1]
    assert np.isnan(per_class[1])


def test_class_accuracy_at_delay(mnist_root):
    task = DelayedRecallTask(TaskConfig(split="test", n_classes=3), root=mnist_root)
    model = trigger_reader(task.obs_dim)  # answers class 0 whenever the trigger comes
    accuracy = class_accuracy_at_delay(model, task, 7, n_trials=60)
    assert accuracy.shape == (3,)
    assert accuracy.tolist() == [1.0, 0.0, 0.0]
