"""What ``memenv analyze`` and its figures say about themselves (issue: outputs that explain
themselves): convergence, every label counted, the predicted sign, coarse backtracking."""

from __future__ import annotations

import argparse

import numpy as np

from analysis.plots import plot_spectra, spread_labels
from analysis.slow_points import SlowPoints
from studies.analyze_commands import add_analyze_arguments, run_analyze
from studies.run_analysis import coarse_backtracking_note

SMALL = [
    "--trials", "4", "--extra-per-class", "1", "--accuracy-trials", "40",
    "--long-delay", "6", "--max-checkpoints", "3", "--no-progress",
]  # fmt: skip


def test_analyze_explains_convergence_labels_sign_and_coarse_backtracking(
    tiny_run, every_trial_counts, capsys
):
    parser = argparse.ArgumentParser()
    add_analyze_arguments(parser)
    assert run_analyze(parser.parse_args([str(tiny_run), *SMALL])) == 0
    printed = capsys.readouterr().out
    summary = (tiny_run / "analysis" / "summary.md").read_text()
    for text in (printed, summary):
        assert "The paper predicts a negative rho" in text
        assert "only 3 checkpoints" in text and "--checkpoint-every" in text
    assert "per readout label (-1 = null): {-1: " in printed
    counted = printed.split("(-1 = null): ")[1].splitlines()[0]
    assert all(f"{k}: " in counted for k in range(-1, 10))  # no label left out, zeros shown
    assert "are one point" in summary and "converged" in summary


def test_coarse_backtracking_note_only_for_few_checkpoints():
    assert "only 3 checkpoints" in coarse_backtracking_note(3)
    assert coarse_backtracking_note(21) is None


def test_spread_labels_keeps_order_and_gap():
    y = np.array([0.0, 0.01, 0.02, 5.0])
    placed = spread_labels(y, min_gap=1.0)
    assert np.all(np.diff(placed[np.argsort(y)]) >= 1.0 - 1e-12)
    assert placed[3] == 5.0 or abs(placed[3] - 5.0) < 2.0
    far = np.array([0.0, 10.0, 20.0])
    np.testing.assert_allclose(spread_labels(far, min_gap=1.0), far)


def test_spectra_title_says_how_many_points_are_shown():
    n = 20
    points = SlowPoints(
        states=np.zeros((n, 2)), initial_states=np.zeros((n, 2)),
        speeds=np.linspace(1e-6, 1e-3, n), converged=np.ones(n, bool),
        iterations=np.ones(n, int), labels=np.zeros(n, int), initial_labels=np.zeros(n, int),
        eigenvalues=np.full((n, 2), 0.5 + 0j), input_x=np.zeros(3), method="newton",
    )  # fmt: skip
    title = plot_spectra(points, max_points=12).axes[0].get_title()
    assert "the 12 slowest of 20 points" in title
