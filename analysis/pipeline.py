"""The whole analysis of one network (`analyze_network`).

`analyze_network` chains the pieces for one trained model: class centres, slow points from the
centres (and from extra single-trial states), de-duplication, per-class speeds, per-class
accuracy at a long delay, the speed-accuracy tables and the trajectories for the PCA figure.
What a run directory adds (the model, its curriculum, backtracking through its checkpoints) is
`studies.run_analysis.analyze_run`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from analysis.backtrack import Lineage
from analysis.centers import AUTHORS_CENTERS, ClassCenters, class_centers, state_trajectories
from analysis.features import analysis_view
from analysis.protocol import FlatDynamics
from analysis.slow_points import SlowPoints, find_slow_points
from analysis.speed_accuracy import (
    ClassSpeedAccuracy,
    class_accuracy_at_delay,
    class_speed_accuracy,
    class_speeds,
    speeds_at,
)
from memenv import DelayedRecallTask

DEFAULT_LONG_DELAY = 60
"""Delay of the 'long-delay accuracy': three trial lengths, well past the trained 4..19."""


@dataclass
class AnalysisOptions:
    """Settings of `analyze_network` / `analyze_run` (defaults: the paper's where it has one).

    Attributes:
        method: Slow-point search, ``"newton"`` (fast) or ``"adam"`` (the paper's).
        n_per_class: Trials per class for the centres (authors: 100).
        settle_steps: Steps from the image to the centre state (authors: 15).
        noise_scale: Noise std for the centres, in pixel-std units (see `analysis.centers`).
        shared_noise: One noise sequence for every centre trial (the authors' MNIST script;
            `analysis.centers.AUTHORS_CENTERS`).
        extra_per_class: Additional searches per class, from single correct trials' states, to
            find more than one slow point per class.
        dedup_tol: Distance under which two slow points are one (`deduplicate`).
        long_delay: Delay of the per-class accuracy correlated with speed.
        accuracy_trials: Trials for each accuracy measurement.
        backtrack: Follow the slow points back through the run's checkpoints.
        max_checkpoints: At most this many checkpoints (evenly spread, last kept); None = all.
        merge_tol: Distance under which two tracked points merge (`backtrack`).
        trajectories_per_class: Trajectories per class in the PCA figure.
        trajectory_steps: Their length.
        seed: Seeds every random draw.
        cell_speed: LSTM cell coordinates in the speed: ``"tanh"`` (the paper's) or ``"raw"``
            (see `analysis.protocol.FlatDynamics`).
        search_options: Extra keyword arguments of the search (e.g. ``{"iterations": 20000}``).
        backtrack_search_options: Those of the backtracking searches (None: ``search_options``),
            e.g. a smaller budget for the many searches through the checkpoints.
        authors_centers_check: Also measure the speed at centres computed the authors' way
            (`analysis.centers.AUTHORS_CENTERS`), for a sensitivity check of the centre noise.
    """

    method: str = "newton"
    n_per_class: int = 100
    settle_steps: int = 15
    noise_scale: float = 1.0
    shared_noise: bool = False
    extra_per_class: int = 5
    dedup_tol: float = 1e-2
    long_delay: int = DEFAULT_LONG_DELAY
    accuracy_trials: int = 1000
    backtrack: bool = True
    max_checkpoints: int | None = 12
    merge_tol: float = 0.05
    trajectories_per_class: int = 8
    trajectory_steps: int = 40
    seed: int = 0
    cell_speed: str = "tanh"
    search_options: dict[str, Any] = field(default_factory=dict)
    authors_centers_check: bool = False
    backtrack_search_options: dict[str, Any] | None = None


@dataclass
class NetworkAnalysis:
    """Everything `analyze_network` found for one network."""

    centers: ClassCenters
    points: SlowPoints
    unique: SlowPoints
    cluster: np.ndarray
    center_speeds: np.ndarray
    point_speeds: np.ndarray
    long_delay_accuracy: np.ndarray
    table_points: ClassSpeedAccuracy
    table_centers: ClassSpeedAccuracy
    trajectories: np.ndarray
    trajectory_labels: np.ndarray
    lineage: Lineage | None = None
    info: dict[str, Any] = field(default_factory=dict)
    table_authors_centers: ClassSpeedAccuracy | None = None

    def points_per_class(self) -> dict[int, int]:
        """Distinct slow points per readout label: -1 (null) and every analysed class, with 0
        for a label no point answers (none is left out)."""
        counts = self.unique.label_counts()
        labels = [-1, *range(len(self.centers.classes))]
        return {k: counts.get(k, 0) for k in sorted(set(labels) | set(counts))}

    def summary_dict(self) -> dict[str, Any]:
        unique = self.unique
        return {
            "info": self.info,
            "n_searches": len(self.points),
            "n_converged": int(self.points.converged.sum()),
            "n_distinct_points": len(unique),
            "distinct_points_per_label": {str(k): v for k, v in self.points_per_class().items()},
            "distinct_points": [
                {
                    "label": int(unique.labels[m]),
                    "speed": float(unique.speeds[m]),
                    "converged": bool(unique.converged[m]),
                    "spectral_radius": _finite_or_none(unique.spectral_radius[m]),
                    "n_searches": int((self.cluster == m).sum()),
                }
                for m in range(len(unique))
            ],
            "centre_accuracy_after_settling": self.centers.accuracy.tolist(),
            "speed_accuracy_slow_points": self.table_points.to_dict(),
            "speed_accuracy_centres": self.table_centers.to_dict(),
            "speed_accuracy_authors_centres": None
            if self.table_authors_centers is None
            else self.table_authors_centers.to_dict(),
            "lineage": None if self.lineage is None else self.lineage.to_dict(),
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def analyze_network(
    model: nn.Module,
    task: DelayedRecallTask,
    options: AnalysisOptions | None = None,
    *,
    n_classes: int | None = None,
    progress: bool = False,
) -> NetworkAnalysis:
    """Centres, slow points, speeds, long-delay accuracy and trajectories of one network.

    Args:
        model: A protocol model.
        task: Supplies images and noise (use the ``test`` split for held-out images).
        options: Settings; default `AnalysisOptions()`.
        n_classes: Active vocabulary; default ``task.config.n_classes``.
        progress: tqdm bars.
    """
    options = options or AnalysisOptions()
    n_classes = task.config.n_classes if n_classes is None else n_classes
    dynamics, input_x, centers = network_centers(model, task, options, n_classes)
    initial, initial_labels = search_starts(centers, options.extra_per_class)
    points = find_slow_points(
        dynamics,
        initial,
        input_x,
        options.method,
        n_classes=n_classes,
        initial_labels=initial_labels,
        progress=progress,
        **options.search_options,
    )
    unique, cluster = points.deduplicate(options.dedup_tol)
    center_q = speeds_at(dynamics, centers.centers, input_x)
    point_q = class_speeds(points, n_classes)
    accuracy = class_accuracy_at_delay(
        model, task, options.long_delay, n_trials=options.accuracy_trials, seed=options.seed
    )
    trajectories, trajectory_labels = state_trajectories(
        dynamics,
        task,
        n_per_class=options.trajectories_per_class,
        n_steps=options.trajectory_steps,
        noise_scale=options.noise_scale,
        n_classes=n_classes,
        seed=options.seed + 1,
    )
    return NetworkAnalysis(
        centers=centers,
        points=points,
        unique=unique,
        cluster=cluster,
        center_speeds=center_q,
        point_speeds=point_q,
        long_delay_accuracy=accuracy,
        table_points=class_speed_accuracy(
            point_q, accuracy, delay=options.long_delay, speed_at="slow point"
        ),
        table_centers=class_speed_accuracy(
            center_q, accuracy, delay=options.long_delay, speed_at="centre"
        ),
        trajectories=trajectories,
        trajectory_labels=trajectory_labels,
        table_authors_centers=_authors_centers_table(
            dynamics, task, options, n_classes, input_x, accuracy
        )
        if options.authors_centers_check
        else None,
    )


def network_centers(
    model: nn.Module, task: DelayedRecallTask, options: AnalysisOptions, n_classes: int
) -> tuple[FlatDynamics, np.ndarray, ClassCenters]:
    """``(dynamics, fixed input, class centres)`` of ``model`` as every analysis computes them:
    the network under `analysis_view`, as `FlatDynamics` with ``options.cell_speed``, and
    `class_centers` with ``options``' trials, settling, noise and seed."""
    view, input_x = analysis_view(model, task, seed=options.seed)
    dynamics = FlatDynamics(view, cell_speed=options.cell_speed)
    centers = class_centers(
        dynamics, task, n_per_class=options.n_per_class, settle_steps=options.settle_steps,
        noise_scale=options.noise_scale, shared_noise=options.shared_noise, n_classes=n_classes,
        seed=options.seed, input_x=input_x,
    )  # fmt: skip
    return dynamics, input_x, centers


def _authors_centers_table(dynamics, task, options, n_classes, input_x, accuracy):
    """Speed at the centres computed as the authors' MNIST script did, vs class accuracy."""
    centers = class_centers(
        dynamics, task, n_per_class=options.n_per_class, settle_steps=options.settle_steps,
        n_classes=n_classes, seed=options.seed, input_x=input_x, **AUTHORS_CENTERS,
    )  # fmt: skip
    speeds = speeds_at(dynamics, centers.centers, input_x)
    return class_speed_accuracy(
        speeds, accuracy, delay=options.long_delay, speed_at="centre (authors' noise)"
    )


def search_starts(centers: ClassCenters, extra_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial states ``[M, N]`` and their classes ``[M]``: every finite class centre first
    (in class order), then up to ``extra_per_class`` correctly answered trials per class."""
    valid = centers.valid
    starts = [centers.centers[valid]]
    labels = [centers.classes[valid]]
    for k in centers.classes:
        chosen = np.flatnonzero(centers.correct & (centers.trial_labels == k))[:extra_per_class]
        starts.append(centers.states[chosen])
        labels.append(np.full(chosen.size, k, dtype=np.int64))
    return np.concatenate(starts), np.concatenate(labels)
