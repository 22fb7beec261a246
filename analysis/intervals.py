"""Confidence intervals over seeds, shared by the experiment tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats


def t_interval(values: Any) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of the finite ``values`` (None counts as missing) and its
    95% Student-t interval; NaN bounds for fewer than 2 values, all NaN for none."""
    array = np.asarray([np.nan if v is None else v for v in np.ravel(values)], dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(array.mean())
    if array.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, array.size - 1) * array.std(ddof=1) / np.sqrt(array.size))
    return mean, mean - half, mean + half
