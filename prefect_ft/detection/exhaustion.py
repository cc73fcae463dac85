"""Time to exhaustion from a Theil-Sen slope with a pessimistic bound.

Method: Garg, van Moorsel, Vaidyanathan and Trivedi (1998) and Grottke et al. (2006): estimate the
trend of a resource with a Sen slope and extrapolate to its limit. The pessimistic time uses the
upper end of the slope's confidence interval (`scipy.stats.theilslopes`), so the alarm comes early
rather than late when the slope is uncertain.

Also the window arithmetic of `resource.ResourceTracker` (split out of it along the seam between
fitting and tracking state): the severity by time to the limit, the halves test of linearity, the
long windows and their longest linear fit, and the cheap pure-Python gate before any fit.

`BudgetWatch`, for samples that carry their own budget, lives in `budget_watch.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.thresholds import Thresholds
from prefect_ft.detection.trend import theil_sen_slope

__all__ = [
    "BLOCK_S",
    "TimeToLimit",
    "exhaustion_alarm",
    "exhaustion_severity",
    "gate",
    "is_linear",
    "long_fit",
    "long_windows",
    "time_to_limit",
]

BLOCK_S = 300.0  # long windows use 5-minute block means of the floor
_LIN_Z = 3.0  # the halves' slopes must differ by this many standard errors to count as a bend


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


@lru_cache(maxsize=8)
def _z(alpha: float) -> float:
    return float(stats.norm.ppf(alpha / 2.0))


def _repeats(a: np.ndarray) -> np.ndarray:
    # sizes of the groups of equal values (those of two or more), as scipy's _find_repeats
    s = np.sort(a)
    change = np.concatenate(([True], s[1:] != s[:-1]))
    freq = np.diff(np.concatenate((*np.nonzero(change), [s.size])))
    return freq[freq > 1]


def _theilslopes(y: np.ndarray, x: np.ndarray, alpha: float) -> tuple[Any, Any, Any, Any]:
    """`scipy.stats.theilslopes(y, x, alpha)` (method "separate"), step for step, so the
    results are the same to the last bit (numpy scalars, as scipy's), without its
    argument-checking wrapper: 0.31 -> 0.08 ms per call on 60 points, idle; under load the
    wrapper cost ~20 ms a call."""
    dx = x[:, np.newaxis] - x
    dy = y[:, np.newaxis] - y
    pos = dx > 0
    slopes = dy[pos] / dx[pos]
    slopes.sort()
    med = np.median(slopes)
    inter = np.median(y) - med * np.median(x)
    z = _z(1.0 - alpha if alpha > 0.5 else alpha)
    nt, ny = slopes.size, y.size
    # 1/18. * (...), not (...) / 18: scipy's rounding
    sigsq = (1 / 18.0) * (
        ny * (ny - 1) * (2 * ny + 5)
        - sum(int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in _repeats(x))
        - sum(int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in _repeats(y))
    )
    sigma = math.sqrt(sigsq) if sigsq >= 0 else math.nan
    if math.isnan(sigma) or nt == 0:
        return med, inter, math.nan, math.nan
    hi = min(round((nt - z * sigma) / 2.0), nt - 1)
    lo = max(round((nt + z * sigma) / 2.0) - 1, 0)
    return med, inter, slopes[lo], slopes[hi]


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
    slope, intercept, lo, hi = _theilslopes(
        np.asarray(x, dtype=float), np.asarray(t, dtype=float) - t0, alpha
    )
    level = float(intercept + slope * (now - t0))
    resid = x - (intercept + slope * (t - t0))
    noise = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    room = limit - level
    tte = room / slope if slope > 0 else math.inf
    tte_lo = room / hi if hi > 0 else math.inf
    return TimeToLimit(
        float(slope), float(lo), float(hi), level, max(0.0, tte), max(0.0, tte_lo), noise
    )


def exhaustion_severity(tte_s: float) -> Severity:
    """< 15 min CRITICAL, < 1 h HIGH, < 6 h MEDIUM, else LOW (research/detection.md 2.6)."""
    if tte_s < 900:
        return Severity.CRITICAL
    if tte_s < 3600:
        return Severity.HIGH
    if tte_s < 6 * 3600:
        return Severity.MEDIUM
    return Severity.LOW


def exhaustion_alarm(
    name: str,
    est: TimeToLimit,
    onset: float,
    at: float,
    level: float,
    limit: float,
    is_cpu: bool,
    explanation: str,
) -> Alarm:
    """The one shape of an exhaustion alarm (per-minute tracker and budget watch alike)."""
    return Alarm(
        pattern=Pattern.EXHAUSTION,
        components=(name,),
        onset=onset,
        at=at,
        # by the pessimistic time, the one the alarm rule uses (an alarm at the 1 h horizon
        # is HIGH even when the point estimate is a little over an hour)
        severity=exhaustion_severity(est.tte_lo_s),
        failure_type=FailureType.RESOURCE_EXHAUSTION,
        score=est.tte_lo_s,
        evidence=(
            ("tte_s", est.tte_s),
            ("tte_lo_s", est.tte_lo_s),
            ("slope_per_min", est.slope * 60),
            ("level", level),
            ("limit", limit),
            ("is_cpu", float(is_cpu)),
        ),
        explanation=explanation,
    )


def is_linear(t: np.ndarray, x: np.ndarray, est: TimeToLimit, tol: float) -> bool:
    """True unless the Theil-Sen slope of either half departs from the window's slope both
    materially (more than `tol` of it) and significantly (more than `_LIN_Z` standard errors).

    A window reaching back before a leak's onset has a flat first half; a level step (a flash
    crowd) has two flat halves around a steep full-window slope; a ramp has neither.
    """
    half = t.size // 2
    s1, _ = theil_sen_slope(t[:half], x[:half])
    s2, _ = theil_sen_slope(t[half:], x[half:])
    th = t[half:] - t[half:].mean()
    se = est.noise / math.sqrt(max(float((th * th).sum()), 1e-9))
    return max(abs(s1 - est.slope), abs(s2 - est.slope)) <= max(tol * abs(est.slope), _LIN_Z * se)


def long_windows(th: Thresholds) -> tuple[int, ...]:
    """Long windows in blocks, longest first: exh_long_window_s halved while >= 2 x short."""
    out, w = [], th.exh_long_window_s
    while w >= 2 * th.exh_window_s and w >= 8 * BLOCK_S:
        out.append(int(w // BLOCK_S))
        w /= 2
    return tuple(out)


def long_fit(
    blocks: Sequence[Sequence[float]],
    wins: tuple[int, ...],
    th: Thresholds,
    end: float,
    limit: float,
    noisy: float,
) -> tuple[TimeToLimit, float] | None:
    """The longest significant and linear fit over the last `wins` blocks (longest first)
    of `blocks` ([time, level] block means), with its span in seconds, or None."""
    nb = len(blocks)
    arr = None
    for n in wins:
        if nb < n:
            continue
        if arr is None:
            arr = np.asarray(blocks, dtype=float)
        t, x = arr[-n:, 0], arr[-n:, 1]
        if x[-1] >= limit or (x[-1] - x[0]) <= 0:
            continue
        est = time_to_limit(t, x, limit, end, th.exh_alpha)
        if est is None or est.slope_lo <= 0:
            continue
        span = t[-1] - t[0]
        if est.slope * span <= th.exh_min_ratio * max(est.noise, noisy):
            continue
        if is_linear(t, x, est, th.exh_lin_tol):
            return est, span
    return None


def gate(
    series: Sequence[Sequence[float]],
    blocks: Sequence[Sequence[float]],
    wins: tuple[int, ...],
    th: Thresholds,
    cpu: bool,
    limit: float,
    x_now: float,
) -> tuple[bool, bool]:
    """Cheap pure-Python tests: could the limit be within 3 horizons, by the short window's
    slope (Bartlett's three-group method: the mean of the last third against the first;
    Bartlett 1949) and by the longest long window's end points? CPU also needs half its
    minimum rise over the window."""
    reach = 3 * th.exh_horizon_s
    half_rise = 0.5 * th.exh_cpu_min_rise if cpu else 0.0
    pts = list(series)
    k = len(pts) // 3
    t0 = x0 = t1 = x1 = 0.0
    for (ta, xa), (tb, xb) in zip(pts[:k], pts[-k:], strict=True):
        t0 += ta
        x0 += xa
        t1 += tb
        x1 += xb
    span = pts[-1][0] - pts[0][0]
    short = (
        x1 > x0
        and (limit - x_now) * (t1 - t0) / (x1 - x0) <= reach
        and (x1 - x0) * span / (t1 - t0) > half_rise
    )
    for n in wins:
        if len(blocks) >= n:
            (t0, x0), (t1, x1) = blocks[-n], blocks[-1]
            return short, x1 - x0 > half_rise and (limit - x1) * (t1 - t0) / (x1 - x0) <= reach
    return short, False
