"""Backtracking through a synthetic sequence of checkpoints where a slow point splits."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest
import torch
from analysis_toy_models import pitchfork_rnn

from analysis.backtrack import Lineage, backtrack
from analysis.slow_points import find_slow_points

N_INPUT = 3
X = torch.zeros(N_INPUT)

# gain < 1: one fixed point (class 0); gain > 1: it has split into class 0 and class 1 points
GAINS = {0: 0.5, 100: 0.6, 200: 2.0, 300: 2.5}
ACCURACY = {0: [0.9, 0.0], 100: [1.0, 0.0], 200: [0.7, 0.8], 300: [0.8, 0.9]}


def _final_points():
    final = pitchfork_rnn(GAINS[300], N_INPUT).double()
    starts = torch.tensor([[0.9, 0.2], [-0.9, -0.2]], dtype=torch.float64)
    return find_slow_points(final, starts, X, eigenvalues=False)


def _checkpoints(lazy: bool):
    if lazy:
        return [(step, lambda g=gain: pitchfork_rnn(g, N_INPUT)) for step, gain in GAINS.items()]
    return [(step, pitchfork_rnn(gain, N_INPUT)) for step, gain in reversed(GAINS.items())]


@pytest.mark.parametrize("lazy", [False, True])
def test_a_split_is_a_birth_from_the_older_point(lazy):
    final = _final_points()
    assert final.labels.tolist() == [0, 1]
    lineage = backtrack(
        _checkpoints(lazy),
        final.states,
        X,
        classes=[0, 1],
        accuracy_fn=lambda model, step: ACCURACY[step],
    )
    assert lineage.steps.tolist() == [0, 100, 200, 300]
    # before the split both tracks sit on the single point, which answers class 0
    assert lineage.together.tolist() == [[0, 0, 0, 0], [0, 0, 1, 1]]
    assert lineage.labels[:, :2].tolist() == [[0, 0], [0, 0]]
    assert lineage.labels[:, 2:].tolist() == [[0, 0], [1, 1]]
    assert lineage.converged.all()
    assert np.abs(lineage.states[0, :2] - lineage.states[1, :2]).max() < 1e-8
    (event,) = lineage.events
    assert (event.child, event.parent, event.parent_track) == (1, 0, 0)
    assert (event.merge_step, event.birth_step) == (100, 200)
    assert event.parent_accuracy_before == pytest.approx(1.0)
    assert event.parent_accuracy_after == pytest.approx(0.7)
    assert event.parent_accuracy_change == pytest.approx(-0.3)
    assert lineage.event_of(1) is event and lineage.event_of(0) is None


def test_vocabulary_per_step_and_save_load(tmp_path):
    final = _final_points()
    lineage = backtrack(
        _checkpoints(False), final.states, X, n_classes_at=lambda step: 1 if step < 200 else 2
    )
    assert lineage.n_classes.tolist() == [1, 1, 2, 2]
    assert np.isnan(lineage.accuracy).all()
    path = tmp_path / "lineage.npz"
    lineage.save(path)
    back = Lineage.load(path)
    assert np.array_equal(back.states, lineage.states)
    assert np.array_equal(back.together, lineage.together)
    # NaN accuracies: compare with numpy's NaN-aware equality
    np.testing.assert_equal([astuple(e) for e in back.events], [astuple(e) for e in lineage.events])
    assert back.to_dict()["events"][0]["child"] == 1


def test_points_that_never_meet_have_no_events():
    final = _final_points()
    checkpoints = [(step, pitchfork_rnn(g, N_INPUT)) for step, g in GAINS.items() if g > 1]
    lineage = backtrack(checkpoints, final.states, X)
    assert lineage.events == []
    assert lineage.together.tolist() == [[0, 0], [1, 1]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        backtrack([], np.zeros((1, 2)), X)
    with pytest.raises(ValueError, match="distinct"):
        backtrack([(1, pitchfork_rnn(2.0)), (1, pitchfork_rnn(2.0))], np.zeros((1, 2)), X)
    with pytest.raises(ValueError, match="classes"):
        backtrack([(1, pitchfork_rnn(2.0))], np.zeros((2, 2)), X, classes=[0])
