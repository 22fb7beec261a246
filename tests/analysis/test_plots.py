"""The figures build, carry what they should, and never touch pyplot's global state."""

from __future__ import annotations

import numpy as np
import torch
from analysis_toy_models import pitchfork_rnn
from matplotlib.figure import Figure

from analysis.backtrack import backtrack
from analysis.plots import plot_lineage, plot_pca, plot_spectra, plot_speed_accuracy
from analysis.slow_points import find_slow_points
from analysis.speed_accuracy import class_speed_accuracy, network_speed_accuracy

X = torch.zeros(3)


def _points():
    model = pitchfork_rnn(2.0).double()
    starts = torch.tensor([[0.9, 0.1], [-0.9, 0.0], [-0.1, 0.0]], dtype=torch.float64)
    return find_slow_points(model, starts, X)


def test_pca_and_spectra(tmp_path):
    points = _points()
    rng = np.random.default_rng(0)
    trajectories = rng.normal(size=(6, 7, 2))
    fig = plot_pca(trajectories, np.array([0, 0, 1, 1, 2, 2]), points)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    fig.savefig(tmp_path / "pca.png")
    spectra = plot_spectra(points)
    assert isinstance(spectra, Figure)
    assert len(spectra.axes[0].collections) == len(points)
    spectra.savefig(tmp_path / "spectra.png")
    assert (tmp_path / "pca.png").stat().st_size > 0


def test_speed_accuracy_figures():
    table = class_speed_accuracy([1e-9, 1e-5, 0.0, np.nan], [0.9, 0.5, 0.95, 0.2], delay=50)
    fig = plot_speed_accuracy(table)
    assert fig.axes[0].get_xscale() == "log"
    assert "Spearman" in fig.axes[0].get_title()
    networks = network_speed_accuracy([1e-3, 1e-5, 1e-4], [0.2, 0.9, 0.5], delay=50)
    assert isinstance(plot_speed_accuracy(networks, title="nets"), Figure)


def test_lineage_figure():
    final = _points().subset([0, 1])
    checkpoints = [(0, pitchfork_rnn(0.5)), (10, pitchfork_rnn(2.0))]
    lineage = backtrack(checkpoints, final.states, X, accuracy_fn=lambda m, s: [0.5, 0.5])
    fig = plot_lineage(lineage)
    assert len(fig.axes) == 2  # tracks, accuracy
    no_accuracy = backtrack(checkpoints, final.states, X)
    assert len(plot_lineage(no_accuracy).axes) == 1


def test_no_pyplot_figures_are_left_open():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_spectra(_points())
    assert plt.get_fignums() == before
