"""Backtracking: follow slow points backwards through a run's checkpoints (docs/paper.md).

Each tracked point (one per class, usually the slow point its centre of mass led to in the
final network) is re-found in every earlier checkpoint, each search starting from where the
point was in the next later one. Going back, two tracks that end up on the same point
*merge*; in forward time the class of the point that later separated was born from the other
class's point. `Lineage` keeps every track and the `MergeEvent` of each class, with the
per-class accuracy at the checkpoints around the event (the paper: in VoCu the older class's
accuracy suffers when the new class arrives).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analysis.npz import load_npz, save_npz
from analysis.slow_points import find_slow_points
from memenv.errors import UsageError

ModelOrLoader = nn.Module | Callable[[], nn.Module]


@dataclass(frozen=True)
class MergeEvent:
    """Going back in training, ``child``'s point merges into the point answering ``parent``.

    Attributes:
        child: The class whose point separates in forward time (was born).
        parent: The class the merged point answers (its readout label at ``merge_step``; -1 if
            null); the class the child was born from.
        parent_track: The track of ``parent`` (-1 if no tracked class answers the merged point).
        merge_step: The latest checkpoint at which the two points coincide.
        birth_step: The next checkpoint, where they are apart: the child was born in between.
        parent_accuracy_before: ``parent``'s accuracy at ``merge_step`` (NaN if unknown).
        parent_accuracy_after: ``parent``'s accuracy at ``birth_step``.
    """

    child: int
    parent: int
    parent_track: int
    merge_step: int
    birth_step: int
    parent_accuracy_before: float
    parent_accuracy_after: float

    @property
    def parent_accuracy_change(self) -> float:
        return self.parent_accuracy_after - self.parent_accuracy_before


@dataclass
class Lineage:
    """Tracks of P points through S checkpoints (numpy arrays, steps increasing).

    Attributes:
        steps: int64 ``[S]``: training step of each checkpoint.
        classes: int64 ``[P]``: the class each track follows.
        states: float64 ``[P, S, N]``: the point in each checkpoint's network.
        speeds: float64 ``[P, S]``.
        labels: int64 ``[P, S]``: readout label of the point (-1 null).
        converged: bool ``[P, S]``.
        together: int64 ``[P, S]``: at each checkpoint, the lowest track index within
            ``merge_tol`` of track p (itself when alone): tracks with equal values share a point.
        accuracy: float64 ``[S, 10]``: per-class accuracy of each checkpoint (NaN unknown).
        n_classes: int64 ``[S]``: active vocabulary at each checkpoint.
        merge_tol: Distance under which two points count as one.
        events: One `MergeEvent` per class that merges going back.
    """

    steps: np.ndarray
    classes: np.ndarray
    states: np.ndarray
    speeds: np.ndarray
    labels: np.ndarray
    converged: np.ndarray
    together: np.ndarray
    accuracy: np.ndarray
    n_classes: np.ndarray
    merge_tol: float
    events: list[MergeEvent]

    def __post_init__(self) -> None:
        self.steps = np.asarray(self.steps, dtype=np.int64)
        self.classes = np.asarray(self.classes, dtype=np.int64)
        self.states = np.asarray(self.states, dtype=np.float64)
        s, p = self.steps.size, self.classes.size
        if self.states.ndim != 3 or self.states.shape[:2] != (p, s):
            raise UsageError(f"states must be [{p}, {s}, N], got {self.states.shape}")
        for name, dtype in (
            ("speeds", np.float64),
            ("labels", np.int64),
            ("converged", np.bool_),
            ("together", np.int64),
        ):
            value = np.asarray(getattr(self, name), dtype=dtype)
            if value.shape != (p, s):
                raise UsageError(f"{name} must have shape {(p, s)}, got {value.shape}")
            setattr(self, name, value)
        self.accuracy = np.asarray(self.accuracy, dtype=np.float64)
        if self.accuracy.ndim != 2 or self.accuracy.shape[0] != s:
            raise UsageError(f"accuracy must be [{s}, K], got {self.accuracy.shape}")
        self.n_classes = np.asarray(self.n_classes, dtype=np.int64)
        if self.n_classes.shape != (s,):
            raise UsageError(f"n_classes must have shape {(s,)}, got {self.n_classes.shape}")
        self.merge_tol = float(self.merge_tol)
        self.events = list(self.events)

    def event_of(self, child: int) -> MergeEvent | None:
        """The merge event of class ``child`` (None: its point never merges going back)."""
        return next((e for e in self.events if e.child == child), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no states)."""
        return {
            "steps": self.steps.tolist(),
            "classes": self.classes.tolist(),
            "labels": self.labels.tolist(),
            "together": self.together.tolist(),
            "merge_tol": self.merge_tol,
            "events": [
                {f.name: _plain(getattr(e, f.name)) for f in fields(e)} for e in self.events
            ],
        }

    def save(self, path: str | os.PathLike) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "events"}
        for f in fields(MergeEvent):
            arrays[f"event_{f.name}"] = np.asarray([getattr(e, f.name) for e in self.events])
        save_npz(path, "Lineage", arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Lineage:
        arrays = load_npz(path, "Lineage")
        columns = {f.name: arrays.pop(f"event_{f.name}") for f in fields(MergeEvent)}
        n_events = columns["child"].size
        events = [
            MergeEvent(**{name: _plain(values[i]) for name, values in columns.items()})
            for i in range(n_events)
        ]
        arrays["merge_tol"] = float(arrays["merge_tol"])
        return cls(events=events, **arrays)


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer | int):
        return int(value)
    return float(value)


def backtrack(
    checkpoints: Sequence[tuple[int, ModelOrLoader]],
    final_states: Any,
    input_x: Any,
    *,
    classes: Any = None,
    method: str = "newton",
    merge_tol: float = 0.05,
    n_classes_at: Callable[[int], int] | None = None,
    accuracy_fn: Callable[[nn.Module, int], Any] | None = None,
    dtype: torch.dtype | None = torch.float64,
    progress: bool = False,
    view: Callable[[nn.Module], tuple[nn.Module, Any]] | None = None,
    **search_options: Any,
) -> Lineage:
    """Follows points backwards from the last checkpoint to the first.

    Args:
        checkpoints: ``(step, model)`` pairs, any order; a model may be a zero-argument callable
            that loads it (only one network is held at a time).
        final_states: ``[P, N]`` flat points in the last checkpoint's network (e.g. its slow
            points found from the class centres); re-found there first.
        input_x: The fixed input ``[D]`` (``task.mean_frame``); ignored when ``view`` is given.
        classes: ``[P]`` the class of each point; default ``0 .. P-1``.
        method: Slow-point search (``"newton"`` or ``"adam"``).
        merge_tol: Two points closer than this (Euclidean) are one point.
        n_classes_at: Active vocabulary at a step (for readout labels); default 10.
        accuracy_fn: ``(model, step) -> [<= 10]`` per-class accuracy, or None.
        dtype: Computation dtype of the searches.
        progress: tqdm bar over checkpoints.
        view: ``model -> (model to search, its fixed input)`` per checkpoint, for inputs that
            depend on the network (`analysis.features.analysis_view`: a CNN front-end's mean
            features change during training).
        **search_options: Passed to `find_slow_points`.
    """
    ordered = sorted(checkpoints, key=lambda pair: int(pair[0]))
    if not ordered:
        raise UsageError("backtrack needs at least one checkpoint")
    steps = np.asarray([int(step) for step, _ in ordered], dtype=np.int64)
    if np.unique(steps).size != steps.size:
        raise UsageError(f"checkpoint steps must be distinct, got {steps.tolist()}")
    start_pxn = np.asarray(final_states, dtype=np.float64)
    if start_pxn.ndim != 2:
        raise UsageError(f"final_states must be [P, N], got shape {start_pxn.shape}")
    n_points, n_state = start_pxn.shape
    classes = np.arange(n_points) if classes is None else np.asarray(classes, dtype=np.int64)
    if classes.shape != (n_points,):
        raise UsageError(f"classes must have shape {(n_points,)}, got {classes.shape}")
    n_steps = steps.size
    states = np.zeros((n_points, n_steps, n_state))
    speeds = np.zeros((n_points, n_steps))
    labels = np.zeros((n_points, n_steps), dtype=np.int64)
    converged = np.zeros((n_points, n_steps), dtype=bool)
    accuracy = np.full((n_steps, 10), np.nan)
    n_classes = np.zeros(n_steps, dtype=np.int64)
    for j in tqdm(range(n_steps - 1, -1, -1), desc="backtrack", disable=not progress, leave=False):
        step, model = ordered[j]
        model = model() if not isinstance(model, nn.Module) and callable(model) else model
        n_classes[j] = 10 if n_classes_at is None else int(n_classes_at(int(step)))
        searched, x = (model, input_x) if view is None else view(model)
        points = find_slow_points(
            searched,
            start_pxn,
            x,
            method,
            n_classes=int(n_classes[j]),
            initial_labels=classes,
            eigenvalues=False,
            dtype=dtype,
            **search_options,
        )
        states[:, j], speeds[:, j] = points.states, points.speeds
        labels[:, j], converged[:, j] = points.labels, points.converged
        if accuracy_fn is not None:
            values = np.asarray(accuracy_fn(model, int(step)), dtype=np.float64).reshape(-1)
            accuracy[j, : values.size] = values
        start_pxn = points.states
        del model
    together = _together(states, merge_tol)
    events = _merge_events(steps, classes, labels, together, accuracy)
    return Lineage(
        steps, classes, states, speeds, labels, converged, together, accuracy, n_classes,
        merge_tol, events,
    )  # fmt: skip


def _together(states_pxsxn: np.ndarray, tol: float) -> np.ndarray:
    """``[P, S]``: per checkpoint, the lowest track index within ``tol`` of each track.

    Single linkage (connected components of the "closer than tol" graph), so the result does
    not depend on the order of the tracks.
    """
    n_points, n_steps, _ = states_pxsxn.shape
    together = np.zeros((n_points, n_steps), dtype=np.int64)
    if n_points == 0:
        return together
    for j in range(n_steps):
        points = states_pxsxn[:, j]
        close = np.linalg.norm(points[:, None] - points[None], axis=2) <= tol
        component = np.arange(n_points)
        changed = True
        while changed:  # propagate the minimum index through the graph
            spread = np.where(close, component[None, :], n_points).min(axis=1)
            changed = bool((spread != component).any())
            component = spread
        together[:, j] = component
    return together


def _merge_events(
    steps: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray,
    together: np.ndarray,
    accuracy: np.ndarray,
) -> list[MergeEvent]:
    """For each track, the first checkpoint (going back) where it joins another track."""
    n_points, n_steps = together.shape
    events = []
    for p in range(n_points):
        for j in range(n_steps - 2, -1, -1):
            group_now = np.flatnonzero(together[:, j] == together[p, j])
            group_later = np.flatnonzero(together[:, j + 1] == together[p, j + 1])
            joined = np.setdiff1d(group_now, group_later)
            if joined.size == 0:
                continue
            answer = int(labels[p, j])
            owners = [q for q in group_now if classes[q] == answer]
            if answer == classes[p]:
                break  # the merged point is p's own: the others were born from p
            parent_track = int(owners[0]) if owners else -1
            parent = answer
            before = _accuracy(accuracy, j, parent)
            after = _accuracy(accuracy, j + 1, parent)
            events.append(
                MergeEvent(
                    child=int(classes[p]),
                    parent=parent,
                    parent_track=parent_track,
                    merge_step=int(steps[j]),
                    birth_step=int(steps[j + 1]),
                    parent_accuracy_before=before,
                    parent_accuracy_after=after,
                )
            )
            break
    return events


def _accuracy(accuracy_sx10: np.ndarray, j: int, cls: int) -> float:
    if 0 <= cls < accuracy_sx10.shape[1]:
        return float(accuracy_sx10[j, cls])
    return float("nan")
