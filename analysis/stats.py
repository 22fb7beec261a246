"""The statistics of the claims (`analysis.claims`): effects with 95% intervals, paired and
stratified tests, and Holm's correction. Pure numpy / scipy; every function takes plain arrays.

Every test here is two-sided unless its name says otherwise, and every effect comes with a 95%
interval of the same quantity (a t-interval for means and mean differences, a percentile
bootstrap for correlations), so that a row of the claims table can show an effect size and
its uncertainty next to its p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from memenv.errors import UsageError

CONFIDENCE = 0.95
"""Level of every interval."""


@dataclass(frozen=True)
class Effect:
    """An effect, its 95% interval, a test's two-sided p-value and the sample size.

    Attributes:
        estimate: The effect (a mean difference, a correlation, a share minus its reference).
        low: Lower end of the 95% interval (NaN when it cannot be computed, e.g. n < 2).
        high: Upper end.
        p_value: Two-sided p-value of the test of "no effect" (NaN: not testable).
        n: Units the test used (pairs, networks, births).
    """

    estimate: float
    low: float
    high: float
    p_value: float
    n: int

    def interval(self, digits: int = 3) -> str:
        """``+0.123 [+0.045, +0.201]`` (``n/a`` parts where not finite)."""

        def fmt(value: float) -> str:
            return f"{value:+.{digits}f}" if math.isfinite(value) else "n/a"

        return f"{fmt(self.estimate)} [{fmt(self.low)}, {fmt(self.high)}]"


NOT_TESTABLE = Effect(math.nan, math.nan, math.nan, math.nan, 0)


def _vector(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise UsageError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def mean_test(values: Any, reference: float = 0.0) -> Effect:
    """One-sample t-test of the mean of ``values [n]`` against ``reference``; the effect is
    ``mean - reference`` with its t-interval. NaN values are dropped. Constant values give
    p = 1 (mean equal to the reference) or 0 (different) and a zero-width interval."""
    x = _vector(values, "values")
    x = x[np.isfinite(x)]
    if x.size == 0:
        return NOT_TESTABLE
    estimate = float(x.mean() - reference)
    if x.size < 2:
        return Effect(estimate, math.nan, math.nan, math.nan, int(x.size))
    if np.ptp(x) == 0:
        return Effect(estimate, estimate, estimate, 1.0 if estimate == 0 else 0.0, int(x.size))
    result = stats.ttest_1samp(x, reference)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Effect(estimate, estimate - half, estimate + half, float(result.pvalue), int(x.size))


def paired_test(a: Any, b: Any) -> Effect:
    """Paired t-test of ``a - b`` (``[n]`` each, element i of both from one pair, e.g. the same
    seed); pairs with a NaN are dropped. The effect is the mean difference."""
    a_n, b_n = _vector(a, "a"), _vector(b, "b")
    if a_n.shape != b_n.shape:
        raise UsageError(f"paired samples must have one shape, got {a_n.shape} and {b_n.shape}")
    return mean_test(a_n - b_n)


def equivalence_test(differences: Any, margin: float) -> tuple[float, float]:
    """Two one-sided t-tests (TOST) that the mean of ``differences`` lies inside
    ``(-margin, margin)``, and the one-sided test that it lies outside, beyond the margin on
    the side of the sample mean.

    Returns:
        ``(p_equivalent, p_beyond)``: small ``p_equivalent`` supports "equal within the
        margin"; small ``p_beyond`` supports "different by more than the margin". NaN when
        fewer than 2 finite values.
    """
    if not margin > 0:
        raise UsageError(f"margin must be positive, got {margin!r}")
    d = _vector(differences, "differences")
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan, math.nan
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    if se == 0:
        inside = abs(mean) < margin
        return (0.0, 1.0) if inside else (1.0, 0.0 if abs(mean) > margin else 1.0)
    df = d.size - 1
    p_lower = float(stats.t.sf((mean + margin) / se, df))  # H0: mean <= -margin
    p_upper = float(stats.t.cdf((mean - margin) / se, df))  # H0: mean >= +margin
    beyond = (abs(mean) - margin) / se  # H0: |mean| <= margin, on the observed side
    return max(p_lower, p_upper), float(stats.t.sf(beyond, df))


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a binomial share (NaN, NaN when ``trials`` is 0)."""
    if trials <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    half /= 1 + z * z / trials
    return max(0.0, centre - half), min(1.0, centre + half)


def _rank_correlation_rows(x_rxn: np.ndarray, y_rxn: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (``[R, n]`` each): Pearson's r of the average ranks;
    NaN where a row is constant or ``n < 3``."""
    if x_rxn.shape[1] < 3:
        return np.full(x_rxn.shape[0], np.nan)
    rx = stats.rankdata(x_rxn, axis=1)
    ry = stats.rankdata(y_rxn, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    norm = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (rx * ry).sum(axis=1) / np.where(norm > 0, norm, 1), np.nan)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(_rank_correlation_rows(x[None], y[None])[0])


def _strata_indices(strata: Sequence[Any], n: int) -> list[np.ndarray]:
    if len(strata) != n:
        raise UsageError(f"strata must have one label per unit ({n}), got {len(strata)}")
    labels: dict[Any, list[int]] = {}
    for i, label in enumerate(strata):
        labels.setdefault(label, []).append(i)
    return [np.asarray(v) for v in labels.values()]


def _weighted_rows(rho_gxr: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """Per row, the mean of the strata's rhos weighted by their sizes, over the strata where
    that row's rho is defined (NaN where none is)."""
    rho = np.stack(rho_gxr)  # [G, R]
    weight = np.asarray(sizes, dtype=np.float64)[:, None] * np.isfinite(rho)
    with np.errstate(invalid="ignore"):
        return np.nansum(np.nan_to_num(rho) * weight, axis=0) / np.where(
            weight.sum(axis=0) > 0, weight.sum(axis=0), np.nan
        )


def stratified_spearman(x: Any, y: Any, strata: Sequence[Any]) -> tuple[float, int]:
    """Spearman's rho within each stratum, averaged with weights ``n_s`` over the strata where
    it is defined (>= 3 units, neither variable constant).

    Returns:
        ``(rho, n)``: the weighted mean (NaN if no stratum qualifies) and the units in the
        qualifying strata.
    """
    x_n, y_n = _vector(x, "x"), _vector(y, "y")
    groups = _strata_indices(strata, x_n.size)
    rhos = [_rank_correlation_rows(x_n[g][None], y_n[g][None]) for g in groups]
    n = sum(g.size for g, r in zip(groups, rhos, strict=True) if np.isfinite(r[0]))
    return float(_weighted_rows(rhos, [g.size for g in groups])[0]), int(n)


def stratified_permutation_test(
    x: Any,
    y: Any,
    strata: Sequence[Any],
    *,
    n_permutations: int = 10_000,
    n_bootstrap: int = 2_000,
    seed: int = 0,
) -> Effect:
    """Within-stratum association of ``x`` and ``y`` (`stratified_spearman`), tested by
    permuting ``y`` within each stratum (the null: no association inside any stratum, whatever
    the strata's means), with a stratified percentile-bootstrap 95% interval.

    Units with a NaN in ``x`` or ``y`` are dropped first. The p-value is two-sided,
    ``(1 + #{|rho*| >= |rho|}) / (1 + n_permutations)``.

    Args:
        x, y: ``[n]`` values per unit (e.g. network).
        strata: ``n`` hashable labels (e.g. ``("gru", "vocu")``); units are exchanged only
            inside their stratum.
    """
    x_n, y_n = _vector(x, "x"), _vector(y, "y")
    if x_n.shape != y_n.shape:
        raise UsageError(f"x and y must have one shape, got {x_n.shape} and {y_n.shape}")
    keep = np.isfinite(x_n) & np.isfinite(y_n)
    labels = [s for s, k in zip(strata, keep, strict=True) if k]
    x_n, y_n = x_n[keep], y_n[keep]
    observed, n = stratified_spearman(x_n, y_n, labels)
    if not math.isfinite(observed):
        return Effect(math.nan, math.nan, math.nan, math.nan, n)
    groups = [g for g in _strata_indices(labels, x_n.size) if g.size >= 3]
    sizes = [g.size for g in groups]
    rng = np.random.default_rng(seed)
    permuted = []
    for g in groups:
        order_pxs = rng.random((n_permutations, g.size)).argsort(axis=1)
        x_pxs = np.broadcast_to(x_n[g], (n_permutations, g.size))
        permuted.append(_rank_correlation_rows(x_pxs, y_n[g][order_pxs]))
    null_p = _weighted_rows(permuted, sizes)
    extreme = int((np.abs(null_p) >= abs(observed) - 1e-12).sum())
    p_value = (1 + extreme) / (1 + n_permutations)
    boot = []
    for g in groups:
        picks_bxs = g[rng.integers(0, g.size, (n_bootstrap, g.size))]
        boot.append(_rank_correlation_rows(x_n[picks_bxs], y_n[picks_bxs]))
    low, high = _percentiles(_weighted_rows(boot, sizes))
    return Effect(observed, low, high, float(p_value), n)


def spearman_test(x: Any, y: Any, *, n_bootstrap: int = 2_000, seed: int = 0) -> Effect:
    """Spearman's rho over all units (pooled), scipy's p-value, percentile-bootstrap 95%
    interval. NaN pairs dropped."""
    x_n, y_n = _vector(x, "x"), _vector(y, "y")
    keep = np.isfinite(x_n) & np.isfinite(y_n)
    x_n, y_n = x_n[keep], y_n[keep]
    rho = _spearman(x_n, y_n)
    if not math.isfinite(rho):
        return Effect(math.nan, math.nan, math.nan, math.nan, int(x_n.size))
    p_value = float(stats.spearmanr(x_n, y_n).pvalue)
    rng = np.random.default_rng(seed)
    picks_bxn = rng.integers(0, x_n.size, (n_bootstrap, x_n.size))
    low, high = _percentiles(_rank_correlation_rows(x_n[picks_bxn], y_n[picks_bxn]))
    return Effect(rho, low, high, p_value, int(x_n.size))


def _percentiles(values: Any) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 20:
        return math.nan, math.nan
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), same order as given.

    NaN entries (untested hypotheses) stay NaN and do not count in the family size.
    """
    p = _vector(p_values, "p_values")
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    if tested.size == 0:
        return adjusted
    if ((p[tested] < 0) | (p[tested] > 1)).any():
        raise UsageError(f"p-values must lie in [0, 1], got {p[tested].tolist()}")
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def geometric_mean(values: Any) -> float:
    """Geometric mean of the finite, positive entries (NaN if none): the class average of
    speeds, which span orders of magnitude (an arithmetic mean is the largest class's)."""
    x = _vector(values, "values")
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.log(x).mean())) if x.size else math.nan
