"""The claims' statistics against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.stats import (
    equivalence_test,
    geometric_mean,
    holm,
    mean_test,
    paired_test,
    spearman_test,
    stratified_permutation_test,
    stratified_spearman,
    wilson_interval,
)


def test_holm_adjusts_step_down_and_skips_untested():
    adjusted = holm([0.01, 0.04, math.nan, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.09, max(0.09, 0.08), 0.5
    assert adjusted[[0, 3, 1, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert math.isnan(adjusted[2])
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]  # capped at 1
    assert np.isnan(holm([math.nan])).all()
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\], got \[1.5\]"):
        holm([1.5])


def test_paired_test_is_scipys_paired_t_with_its_interval():
    a = np.array([0.61, 0.42, 0.83, 0.55, 0.70])
    b = a - np.array([0.05, 0.07, 0.04, 0.06, 0.05])
    effect = paired_test(a, b)
    assert effect.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert effect.estimate == pytest.approx(0.054) and effect.n == 5
    assert effect.low < 0.054 < effect.high and effect.low > 0
    # Welch ignores the pairing and sees nothing; the pairs show the consistent offset
    assert stats.ttest_ind(a, b, equal_var=False).pvalue > 0.3 and effect.p_value < 0.001
    with pytest.raises(ValueError, match=r"one shape, got \(5,\) and \(4,\)"):
        paired_test(a, b[:4])


def test_mean_test_degenerate_cases():
    assert mean_test([0.2, 0.2, 0.2]).p_value == 0.0
    assert mean_test([0.0, 0.0], 0.0).p_value == 1.0
    single = mean_test([0.3])
    assert single.estimate == 0.3 and math.isnan(single.p_value) and single.n == 1
    assert math.isnan(mean_test([math.nan]).estimate)
    assert mean_test([0.4, 0.6, math.nan], 0.5).n == 2


def test_equivalence_and_beyond_the_margin():
    tiny = [0.004, -0.003, 0.001, 0.002, -0.001]
    p_equal, p_beyond = equivalence_test(tiny, 0.02)
    assert p_equal < 0.001 and p_beyond > 0.99
    far = [0.10, 0.11, 0.09, 0.12, 0.10]
    p_equal, p_beyond = equivalence_test(far, 0.02)
    assert p_equal > 0.99 and p_beyond < 0.001
    noisy = [0.05, -0.06, 0.04, -0.03, 0.0]
    p_equal, p_beyond = equivalence_test(noisy, 0.02)
    assert p_equal > 0.05 and p_beyond > 0.05
    with pytest.raises(ValueError, match="margin must be positive, got 0"):
        equivalence_test(tiny, 0)


def test_wilson_interval_and_geometric_mean():
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert geometric_mean([1e-6, 1e-4, math.nan, 0.0, -1.0]) == pytest.approx(1e-5)
    assert math.isnan(geometric_mean([math.nan]))


def test_spearman_matches_scipy_and_has_an_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(size=25)
    y = -x + rng.normal(scale=0.5, size=25)
    effect = spearman_test(x, y)
    expected = stats.spearmanr(x, y)
    assert effect.estimate == pytest.approx(expected.statistic)
    assert effect.p_value == pytest.approx(expected.pvalue)
    assert effect.low < effect.estimate < effect.high < 0


def _confounded():
    """Three groups: inside each, speed and accuracy are unrelated; the groups' means line up
    (slow groups remember), so pooling them shows a strong negative correlation."""
    rng = np.random.default_rng(1)
    x, y, strata = [], [], []
    for g, (speed, acc) in enumerate([(-12.0, 0.9), (-9.0, 0.6), (-6.0, 0.3)]):
        for _ in range(6):
            x.append(speed + rng.normal(scale=0.3))
            y.append(acc + rng.normal(scale=0.03))
            strata.append(g)
    return np.array(x), np.array(y), strata


def test_stratified_permutation_sees_through_a_confounded_pool():
    x, y, strata = _confounded()
    pooled = spearman_test(x, y)
    assert pooled.estimate < -0.7 and pooled.p_value < 0.001
    within = stratified_permutation_test(x, y, strata, n_permutations=2000)
    assert abs(within.estimate) < 0.5 and within.p_value > 0.05 and within.n == 18
    per_group = [stats.spearmanr(x[np.array(strata) == g], y[np.array(strata) == g]).statistic
                 for g in range(3)]  # fmt: skip
    assert within.estimate == pytest.approx(np.mean(per_group))


def test_stratified_permutation_finds_a_within_group_association():
    x, _, strata = _confounded()
    y = -x + np.array([0.0, 5.0, 10.0]).repeat(6)  # perfect inside, groups shifted
    effect = stratified_permutation_test(x, y, strata, n_permutations=2000)
    assert effect.estimate == pytest.approx(-1.0)
    assert effect.p_value == pytest.approx(1 / 2001)  # no permutation is as extreme
    assert effect.high <= -0.9


def test_stratified_spearman_skips_undefined_strata():
    rho, n = stratified_spearman(
        [1, 2, 3, 4, 5, 1, 2], [3, 2, 1, 5, 5, 1, 2], [0, 0, 0, 1, 1, 2, 2]
    )
    assert rho == pytest.approx(-1.0) and n == 3  # strata 1 (constant) and 2 (n = 2) left out
    effect = stratified_permutation_test([1, 2], [2, 1], [0, 0])
    assert math.isnan(effect.estimate) and math.isnan(effect.p_value)
    with pytest.raises(ValueError, match=r"one label per unit \(3\), got 2"):
        stratified_spearman([1, 2, 3], [1, 2, 3], [0, 0])
