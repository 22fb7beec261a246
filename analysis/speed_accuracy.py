"""Speed vs accuracy: are slower points better memories? (docs/paper.md: a negative correlation.)

Pure functions on arrays return small tables with Spearman correlations (scipy), so that a
user can feed them speeds and accuracies from anywhere; `class_speeds` and
`class_accuracy_at_delay` compute the usual inputs from a network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from torch import nn

from analysis.centers import ClassCenters
from analysis.protocol import FlatDynamics
from analysis.slow_points import SlowPoints, as_dynamics
from memenv import DelayedRecallTask
from memenv.errors import UsageError


@dataclass(frozen=True)
class Correlation:
    """Spearman's rank correlation: ``rho``, its two-sided ``p_value``, and the ``n`` pairs.

    NaN ``rho`` / ``p_value`` when fewer than 3 finite pairs or a constant variable.
    """

    rho: float
    p_value: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"rho": _json_float(self.rho), "p_value": _json_float(self.p_value), "n": self.n}

    def __str__(self) -> str:
        return f"Spearman rho = {self.rho:.3f} (p = {self.p_value:.3g}, n = {self.n})"


def spearman(x: Any, y: Any) -> Correlation:
    """Spearman correlation over the pairs where both values are finite."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise UsageError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(math.nan, math.nan, n)
    result = stats.spearmanr(x, y)
    return Correlation(float(result.statistic), float(result.pvalue), n)


@dataclass
class ClassSpeedAccuracy:
    """One network: per class, the speed at its slow point (or centre) and its accuracy.

    Attributes:
        classes: int64 ``[K]``.
        speeds: float64 ``[K]`` (NaN: no point for that class).
        accuracy: float64 ``[K]``: accuracy at ``delay``.
        delay: The delay the accuracy was measured at.
        speed_at: What the speeds were measured at (``"slow point"``, ``"centre"``).
        correlation: Spearman of speed vs accuracy over the classes.
    """

    classes: np.ndarray
    speeds: np.ndarray
    accuracy: np.ndarray
    delay: int
    speed_at: str
    correlation: Correlation

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes.tolist(),
            "speeds": [_json_float(v) for v in self.speeds],
            "accuracy": [_json_float(v) for v in self.accuracy],
            "delay": self.delay,
            "speed_at": self.speed_at,
            "correlation": self.correlation.to_dict(),
        }

    def markdown(self) -> str:
        rows = [
            f"| class | speed at {self.speed_at} | accuracy at delay {self.delay} |",
            "|---:|---:|---:|",
        ]
        for k, q, a in zip(self.classes, self.speeds, self.accuracy, strict=True):
            rows.append(f"| {k} | {q:.3g} | {a:.3f} |")
        rows.append(f"\n{self.correlation}")
        return "\n".join(rows)


def class_speed_accuracy(
    speeds: Any,
    accuracy: Any,
    *,
    classes: Any = None,
    delay: int,
    speed_at: str = "slow point",
) -> ClassSpeedAccuracy:
    """Per-class table and Spearman correlation of speed vs accuracy (pure).

    Args:
        speeds: ``[K]`` speed per class.
        accuracy: ``[K]`` accuracy per class at ``delay``.
        classes: ``[K]`` class ids; default ``0 .. K-1``.
        delay: The delay of ``accuracy``.
        speed_at: Label of where the speeds were measured.
    """
    speeds = np.asarray(speeds, dtype=np.float64).reshape(-1)
    accuracy = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    if speeds.shape != accuracy.shape:
        raise UsageError(f"speeds {speeds.shape} and accuracy {accuracy.shape} differ in shape")
    classes = np.arange(speeds.size) if classes is None else np.asarray(classes, dtype=np.int64)
    if classes.shape != speeds.shape:
        raise UsageError(f"classes {classes.shape} and speeds {speeds.shape} differ in shape")
    return ClassSpeedAccuracy(
        classes, speeds, accuracy, int(delay), speed_at, spearman(speeds, accuracy)
    )


@dataclass
class NetworkSpeedAccuracy:
    """Across networks: mean speed (over classes) vs mean accuracy at a long delay.

    Attributes:
        names: One label per network.
        mean_speeds: float64 ``[R]``.
        accuracy: float64 ``[R]``.
        delay: The delay of ``accuracy`` (None if mixed or unknown).
        correlation: Spearman over the networks.
    """

    names: list[str]
    mean_speeds: np.ndarray
    accuracy: np.ndarray
    delay: int | None
    correlation: Correlation

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean_speeds": [_json_float(v) for v in self.mean_speeds],
            "accuracy": [_json_float(v) for v in self.accuracy],
            "delay": self.delay,
            "correlation": self.correlation.to_dict(),
        }


def network_speed_accuracy(
    mean_speeds: Any,
    accuracy: Any,
    *,
    names: Sequence[str] | None = None,
    delay: int | None = None,
) -> NetworkSpeedAccuracy:
    """Table and Spearman correlation across networks (pure)."""
    mean_speeds = np.asarray(mean_speeds, dtype=np.float64).reshape(-1)
    accuracy = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    if mean_speeds.shape != accuracy.shape:
        raise UsageError(f"{mean_speeds.shape} speeds but {accuracy.shape} accuracies")
    names = [f"net{i}" for i in range(mean_speeds.size)] if names is None else list(names)
    if len(names) != mean_speeds.size:
        raise UsageError(f"{len(names)} names for {mean_speeds.size} networks")
    return NetworkSpeedAccuracy(
        names, mean_speeds, accuracy, delay, spearman(mean_speeds, accuracy)
    )


def from_class_tables(
    tables: Sequence[ClassSpeedAccuracy], names: Sequence[str] | None = None
) -> NetworkSpeedAccuracy:
    """Network-level table from per-network class tables (mean over finite classes)."""
    delays = {t.delay for t in tables}
    return network_speed_accuracy(
        [np.nanmean(t.speeds) if np.isfinite(t.speeds).any() else np.nan for t in tables],
        [np.nanmean(t.accuracy) if np.isfinite(t.accuracy).any() else np.nan for t in tables],
        names=names,
        delay=delays.pop() if len(delays) == 1 else None,
    )


# ----------------------------------------------------------------- inputs from a network
def class_speeds(points: SlowPoints, n_classes: int) -> np.ndarray:
    """float64 ``[n_classes]``: speed of the slow point each class's search ended at.

    The search of class k is the first point with ``initial_labels == k`` (searches started
    from the class centres carry their class there); NaN for a class without one.
    """
    speeds = np.full(n_classes, np.nan)
    for k in range(n_classes):
        found = np.flatnonzero(points.initial_labels == k)
        if found.size:
            speeds[k] = points.speeds[found[0]]
    return speeds


def speeds_at(model: nn.Module | FlatDynamics, states: Any, input_x: Any) -> np.ndarray:
    """float64 ``[M]``: the speed ``q`` at each of the flat ``states [M, N]`` (NaN rows: NaN)."""
    dynamics = as_dynamics(model)
    states = np.asarray(states, dtype=np.float64)
    out = np.full(states.shape[0], np.nan)
    finite = np.isfinite(states).all(axis=1)
    if finite.any():
        q = dynamics.speed(dynamics.as_states(states[finite]), dynamics.as_input(input_x))
        out[finite] = q.double().cpu().numpy()
    return out


def center_speeds(
    model: nn.Module | FlatDynamics, centers: ClassCenters, input_x: Any
) -> np.ndarray:
    """float64 ``[K]``: the speed at every class centre (NaN for a class without one)."""
    return speeds_at(model, centers.centers, input_x)


def class_accuracy_at_delay(
    model: nn.Module,
    task: DelayedRecallTask,
    delay: int,
    *,
    n_trials: int = 1000,
    seed: int = 0,
    t_stim: int | None = 0,
) -> np.ndarray:
    """float64 ``[task.config.n_classes]``: per-class accuracy at ``delay``.

    Uses `agents.evaluate.evaluate_delays` (trials with the image at ``t_stim``, response at
    ``t_stim + delay``; about ``n_trials / n_classes`` trials per class).
    """
    from agents.evaluate import evaluate_delays

    result = evaluate_delays(
        model, task, delays=[int(delay)], n_trials=n_trials, seed=seed, t_stim=t_stim
    )
    return result.class_accuracy[0, 0, : task.config.n_classes].astype(np.float64)


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
