"""Memory half-life: one number for how long a network remembers.

The half-life of an accuracy-vs-delay curve is the delay at which held-out accuracy has fallen
halfway from its value in the trained range to chance::

    level    = chance + (a_trained - chance) / 2,    a_trained = mean accuracy at trained delays
    half-life = the first delay d where the curve crosses below ``level``, linearly
                interpolated in log(delay) between the two evaluated delays around the crossing

A curve that never falls that far is *censored*: its half-life is at least the longest delay
evaluated (a lower bound, written ``>= 2000``). A curve whose trained-range accuracy is below
``chance + MIN_LEARNED * (1 - chance)`` (0.55 for ten classes) has no half-life (NaN): it did
not learn the task, and the fall of a curve that starts near chance measures noise and which
classes the model learned to answer, not memory (a vanilla RNN at 0.21 inside the trained range
"fell halfway" to chance at delay 938 on one run, and another at 0.13 at delay 8).

Over seeds, `memory_half_life` takes the half-life of the mean curve and a percentile bootstrap
interval over seeds (resampled with replacement, the half-life of each resample's mean curve,
in log delay); a resample that is censored counts at the longest delay, so an upper end equal
to it is itself a lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memenv.errors import UsageError

MIN_LEARNED = 0.5
"""Share of the way from chance to perfect that the trained-range accuracy must reach for a
curve to have a half-life."""


@dataclass(frozen=True)
class HalfLife:
    """The memory half-life of one architecture over its seeds.

    Attributes:
        delay: Half-life of the mean curve (steps); the longest delay when ``censored``; NaN
            when the trained-range accuracy is below the `MIN_LEARNED` level.
        censored: The mean curve never fell halfway to chance: ``delay`` is a lower bound.
        low, high: 95% percentile bootstrap interval over seeds (NaN with one seed).
        high_censored, low_censored: That end is the longest delay, reached by censored
            resamples: a lower bound of it.
        n_seeds: Seeds the curve averages.
    """

    delay: float
    censored: bool
    low: float
    high: float
    high_censored: bool
    n_seeds: int
    low_censored: bool = False

    def text(self) -> str:
        """``"190 [95, 380]"``, ``">= 2000"``, ``"-"`` (no half-life)."""
        if not math.isfinite(self.delay):
            return "-"
        value = f">= {self.delay:.0f}" if self.censored else f"{self.delay:.0f}"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return value
        if self.low_censored:  # every resample kept its memory to the longest delay
            return value
        high = f">= {self.high:.0f}" if self.high_censored else f"{self.high:.0f}"
        return f"{value} [{self.low:.0f}, {high}]"

    def sort_key(self) -> float:
        """Longer memory first: censored curves above every measured one (by their bound),
        no half-life last."""
        if not math.isfinite(self.delay):
            return math.inf
        return -(self.delay * (10.0 if self.censored else 1.0))

    def to_dict(self) -> dict[str, float | bool | int | None]:
        def finite(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {
            "delay": finite(self.delay), "censored": self.censored, "low": finite(self.low),
            "high": finite(self.high), "high_censored": self.high_censored,
            "low_censored": self.low_censored, "n_seeds": self.n_seeds,
        }  # fmt: skip


def curve_half_life(
    delays_d: np.ndarray, accuracy_d: np.ndarray, trained: tuple[int, int], chance: float
) -> tuple[float, bool]:
    """``(half-life, censored)`` of one accuracy curve (see the module).

    Args:
        delays_d: ``[n_d]`` increasing evaluated delays (positive).
        accuracy_d: ``[n_d]`` accuracy at each.
        trained: Shortest and longest trained delay (inclusive).
        chance: Accuracy of guessing (``1 / n_classes``).
    """
    delays_d = np.asarray(delays_d, dtype=np.float64)
    accuracy_d = np.asarray(accuracy_d, dtype=np.float64)
    inside = (delays_d >= trained[0]) & (delays_d <= trained[1])
    if not inside.any():
        raise UsageError(f"no evaluated delay lies in the trained range {trained}")
    a_trained = float(np.mean(accuracy_d[inside]))
    if a_trained < chance + MIN_LEARNED * (1 - chance):
        return math.nan, False
    level = chance + (a_trained - chance) / 2
    below = np.flatnonzero(accuracy_d < level)
    if below.size == 0:
        return float(delays_d[-1]), True
    i = int(below[0])
    if i == 0:
        return float(delays_d[0]), False
    a0, a1 = accuracy_d[i - 1], accuracy_d[i]
    x0, x1 = math.log(delays_d[i - 1]), math.log(delays_d[i])
    return float(math.exp(x0 + (a0 - level) / (a0 - a1) * (x1 - x0))), False


def memory_half_life(
    delays_d: np.ndarray,
    accuracy_sxd: np.ndarray,
    trained: tuple[int, int],
    chance: float,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> HalfLife:
    """The half-life of the mean curve over seeds and its bootstrap interval.

    Args:
        delays_d: ``[n_d]`` increasing delays.
        accuracy_sxd: ``[S, n_d]`` accuracy per seed and delay.
        trained: Shortest and longest trained delay.
        chance: ``1 / n_classes``.
        n_boot: Bootstrap resamples of the seeds.
        seed: Seed of the resampling.
    """
    accuracy_sxd = np.atleast_2d(np.asarray(accuracy_sxd, dtype=np.float64))
    delays_d = np.asarray(delays_d, dtype=np.float64)
    if accuracy_sxd.shape[1] != delays_d.size or accuracy_sxd.shape[0] == 0:
        raise UsageError(
            f"accuracy_sxd must be [seeds >= 1, {delays_d.size}], got {accuracy_sxd.shape}"
        )
    if np.any(np.diff(delays_d) <= 0) or delays_d[0] <= 0:
        raise UsageError(f"delays_d must be positive and increasing, got {delays_d.tolist()}")
    n_seeds = accuracy_sxd.shape[0]
    delay, censored = curve_half_life(delays_d, accuracy_sxd.mean(axis=0), trained, chance)
    low = high = math.nan
    high_censored = low_censored = False
    if n_seeds >= 2 and math.isfinite(delay):
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
        values, flags = zip(
            *(curve_half_life(delays_d, accuracy_sxd[p].mean(axis=0), trained, chance)
              for p in picks), strict=True,
        )  # fmt: skip
        logs = np.log(np.asarray([v for v in values if math.isfinite(v)]))
        if logs.size:
            low, high = (float(np.exp(q)) for q in np.percentile(logs, [2.5, 97.5]))
            top = delays_d[-1] * (1 - 1e-9)
            high_censored = bool(any(flags) and high >= top)
            low_censored = bool(any(flags) and low >= top)
    return HalfLife(delay, censored, low, high, high_censored, n_seeds, low_censored)
