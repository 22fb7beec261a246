"""Memory half-life: interpolation in log delay, censoring, the bootstrap over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.half_life import curve_half_life, memory_half_life
from memenv.errors import UsageError

DELAYS = np.array([4, 19, 38, 190, 1900])


def test_halfway_to_chance_interpolated_in_log_delay():
    # trained range 4..19 at 1.0, chance 0.1: the level is 0.55, crossed between 38 and 190
    delay, censored = curve_half_life(DELAYS, [1.0, 1.0, 0.8, 0.3, 0.1], (4, 19), 0.1)
    assert delay == pytest.approx(math.sqrt(38 * 190)) and not censored
    # the trained-range value is the mean over trained delays, not the first delay's
    delay, _ = curve_half_life(DELAYS, [1.0, 0.6, 0.8, 0.3, 0.1], (4, 19), 0.1)
    level = 0.1 + (0.8 - 0.1) / 2
    frac = (0.8 - level) / (0.8 - 0.3)
    assert delay == pytest.approx(math.exp(math.log(38) + frac * math.log(190 / 38)))


def test_never_falling_is_a_lower_bound_and_chance_has_none():
    assert curve_half_life(DELAYS, [0.9, 0.9, 0.9, 0.8, 0.7], (4, 19), 0.1) == (1900.0, True)
    delay, censored = curve_half_life(DELAYS, [0.1, 0.1, 0.1, 0.1, 0.1], (4, 19), 0.1)
    assert math.isnan(delay) and not censored
    # learned less than halfway from chance to 1 (0.55): no half-life, however the curve falls
    assert math.isnan(curve_half_life(DELAYS, [0.5, 0.5, 0.5, 0.1, 0.1], (4, 19), 0.1)[0])
    assert curve_half_life(DELAYS, [0.56, 0.56, 0.56, 0.1, 0.1], (4, 19), 0.1)[0] < 190
    summary = memory_half_life(DELAYS, [[0.9, 0.9, 0.9, 0.8, 0.7]] * 3, (4, 19), 0.1)
    assert summary.censored and summary.low_censored and summary.text() == ">= 1900"
    assert memory_half_life(DELAYS, [[0.1] * 5], (4, 19), 0.1).text() == "-"


def test_bootstrap_over_seeds():
    same = memory_half_life(DELAYS, [[1.0, 1.0, 0.8, 0.3, 0.1]] * 4, (4, 19), 0.1)
    assert same.low == pytest.approx(same.delay) and same.high == pytest.approx(same.delay)
    spread = np.array([[1.0, 1.0, 0.9, 0.5, 0.1], [1.0, 1.0, 0.6, 0.2, 0.1],
                       [1.0, 1.0, 0.8, 0.3, 0.1]])  # fmt: skip
    summary = memory_half_life(DELAYS, spread, (4, 19), 0.1)
    assert summary.low < summary.delay < summary.high and summary.n_seeds == 3
    one = memory_half_life(DELAYS, spread[:1], (4, 19), 0.1)
    assert math.isnan(one.low) and "[" not in one.text()
    # longer memory sorts first; a lower bound above every measured half-life
    censored = memory_half_life(DELAYS, [[0.9, 0.9, 0.9, 0.8, 0.7]], (4, 19), 0.1)
    assert sorted([one, censored], key=lambda h: h.sort_key())[0] is censored


def test_bad_inputs_are_named():
    with pytest.raises(UsageError, match=r"accuracy_sxd must be \[seeds >= 1, 5\], got \(1, 3\)"):
        memory_half_life(DELAYS, [[1.0, 0.5, 0.1]], (4, 19), 0.1)
    with pytest.raises(UsageError, match="positive and increasing"):
        memory_half_life(DELAYS[::-1], [[1.0] * 5], (4, 19), 0.1)
    with pytest.raises(UsageError, match="no evaluated delay lies in the trained range"):
        curve_half_life(DELAYS, [1.0] * 5, (5, 18), 0.1)
