"""Pipeline helpers: checkpoint selection, search starts, the vocabulary of a run's steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis.centers import ClassCenters
from analysis.pipeline import search_starts
from studies.run_analysis import select_checkpoints, vocabulary_function


def test_select_checkpoints_spreads_and_keeps_the_last():
    kept = [(s, Path(f"step_{s}.pt")) for s in range(0, 1100, 100)]
    chosen = select_checkpoints(kept, 4)
    assert [s for s, _ in chosen] == [0, 300, 700, 1000]
    assert select_checkpoints(kept, None) == kept
    assert select_checkpoints(kept[:3], 5) == kept[:3]
    assert [s for s, _ in select_checkpoints(kept, 1)] == [1000]


def test_search_starts_are_centres_then_correct_trials():
    states = np.arange(12, dtype=float).reshape(6, 2)
    centers = ClassCenters(
        centers=np.array([[0.0, 1.0], [np.nan, np.nan], [5.0, 5.0]]),
        classes=np.arange(3),
        n_correct=np.array([2, 0, 1]),
        n_trials=np.array([2, 2, 2]),
        states=states,
        trial_labels=np.array([0, 0, 1, 1, 2, 2]),
        correct=np.array([True, True, False, False, False, True]),
        settle_steps=15,
        noise_scale=1.0,
    )
    starts, labels = search_starts(centers, extra_per_class=1)
    assert labels.tolist() == [0, 2, 0, 2]
    np.testing.assert_array_equal(starts, [[0, 1], [5, 5], states[0], states[5]])


def _config(curriculum: str, scale: float = 1.0):
    from agents.config import TrainConfig

    return TrainConfig(curriculum=curriculum, curriculum_scale=scale, device="cpu")


def test_vocabulary_of_fixed_and_adaptive_curricula(tmp_path):
    assert vocabulary_function(tmp_path, _config("none"))(123) == 10
    fixed = vocabulary_function(tmp_path, _config("vocu", 0.01))
    assert [fixed(s) for s in (0, 1, 80, 101, 2000)] == [2, 2, 2, 3, 10]
    lines = [
        {"step": 50, "n_classes": 2},
        {"step": 100, "n_classes": 3},
        {"step": 150, "n_classes": [4, 5]},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    adaptive = vocabulary_function(tmp_path, _config("adaptive_vocu"))
    assert [adaptive(s) for s in (0, 50, 120, 500)] == [2, 2, 3, 4]
