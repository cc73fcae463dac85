"""Time to exhaustion from a Theil-Sen slope with a pessimistic bound.

Method: Garg, van Moorsel, Vaidyanathan and Trivedi (1998) and Grottke et al. (2006): estimate the
trend of a resource with a Sen slope and extrapolate to its limit. The pessimistic time uses the
upper end of the slope's confidence interval (`scipy.stats.theilslopes`), so the alarm comes early
rather than late when the slope is uncertain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["TimeToLimit", "time_to_limit"]


@dataclass(frozen=True, slots=True)
class TimeToLimit:
    """A time-to-limit estimate.

    Attributes:
        slope: Theil-Sen slope (units per second).
        slope_lo: lower end of the slope's confidence interval.
        slope_hi: upper end.
        level: fitted level at `now`.
        tte_s: point estimate of the seconds left until `limit` (inf if not rising).
        tte_lo_s: pessimistic seconds left, from `slope_hi`.
        noise: robust scale of the residuals.
    """

    slope: float
    slope_lo: float
    slope_hi: float
    level: float
    tte_s: float
    tte_lo_s: float
    noise: float


def time_to_limit(
    t: np.ndarray, x: np.ndarray, limit: float, now: float, alpha: float = 0.90
) -> TimeToLimit | None:
    """Fit a Theil-Sen line to `(t, x)` and extrapolate to `limit`.

    Args:
        t: sample times (seconds), at least 8 distinct values.
        x: resource levels.
        limit: the level at which the resource is exhausted.
        now: the time the estimate is for (the last sample time, for a causal estimate).
        alpha: confidence level of the slope interval.

    Returns:
        The estimate, or None when there are too few distinct times.
    """
    if t.size < 8 or np.unique(t).size < 8:
        return None
    t0 = float(t[0])
    slope, intercept, lo, hi = stats.theilslopes(x, t - t0, alpha=alpha)
    level = float(intercept + slope * (now - t0))
    resid = x - (intercept + slope * (t - t0))
    noise = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    room = limit - level
    tte = room / slope if slope > 0 else math.inf
    tte_lo = room / hi if hi > 0 else math.inf
    return TimeToLimit(
        float(slope), float(lo), float(hi), level, max(0.0, tte), max(0.0, tte_lo), noise
    )
