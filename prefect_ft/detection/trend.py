"""Trend statistics: Mann-Kendall (Mann 1945; Kendall 1975) and Theil-Sen (Theil 1950; Sen 1968).

Both use all pairs of a short window, so they are O(n^2) with n kept small (30 to 200 points).
A significant Mann-Kendall z alone flags tiny, irrelevant trends (Machida et al. 2013), so callers
also require a Theil-Sen slope above a practical effect size.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["mann_kendall_z", "theil_sen_slope"]


@lru_cache(maxsize=16)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    # the windows have a few fixed sizes, and building the pair indices cost as much as the
    # test itself (read-only so a caller cannot corrupt the shared copy)
    i, j = np.triu_indices(n, 1)
    i.flags.writeable = False
    j.flags.writeable = False
    return i, j


def mann_kendall_z(x: np.ndarray) -> float:
    """Mann-Kendall trend z (normal approximation with continuity correction, no-ties variance).

    Args:
        x: values in time order (evenly spaced or not; only their order matters).

    Returns:
        z, positive for an upward trend; 0.0 for fewer than 4 values or a constant series.
    """
    n = int(x.size)
    if n < 4:
        return 0.0
    i, j = _pairs(n)
    s = float(np.sign(x[j] - x[i]).sum())
    var = n * (n - 1) * (2 * n + 5) / 18.0
    if s == 0.0 or var <= 0:
        return 0.0
    return (s - math.copysign(1.0, s)) / math.sqrt(var)


def theil_sen_slope(t: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Theil-Sen slope and intercept: the median of pairwise slopes.

    Args:
        t: times (distinct values are needed for a slope).
        x: values.

    Returns:
        `(slope, intercept)` with `x ~ intercept + slope * t`; `(0.0, median(x))` when fewer than
        two distinct times exist.
    """
    i, j = _pairs(int(t.size))
    dt = t[j] - t[i]
    ok = dt != 0
    if not ok.any():
        return 0.0, float(np.median(x)) if x.size else 0.0
    slope = float(np.median((x[j] - x[i])[ok] / dt[ok]))
    return slope, float(np.median(x - slope * t))
