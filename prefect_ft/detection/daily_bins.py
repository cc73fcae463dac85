"""Reading the daily predictor of `minute_baseline.MinuteBaseline` from its quarter-hour bins.

The baseline keeps, per quarter-hour of the UTC day, the median of that bin's values over the
last days (`dmed`, None while a bin holds fewer than `DAY_MIN`) and when the bin got its first
value (`born`). A bin speaks only from an earlier day's values: on the first day the previous
quarter-hour's bin would be a stale local median. Pure functions of those two lists.
"""

from __future__ import annotations

import math

__all__ = ["BINS", "BIN_S", "DAY_MIN", "bin_index", "smooth_prediction", "step_prediction"]

BIN_S = 900.0  # width of a daily phase bin
BINS = round(86400.0 / BIN_S)
# values a phase bin needs before the daily predictor speaks: most of one day's 15 minutes. It
# used to need more than 20 (part of a second day), so on a 48-h history it never spoke on day
# 2; one day is enough to predict the next, and it only takes over once its errors beat the
# reference's (ENTER), which one odd day cannot fake for 4 hours
DAY_MIN = 12
_DAY_AGE_S = 20 * 3600.0  # a bin's first value must be this old (from an earlier day)
_GAP_BINS = 4  # bins either side a short bin is interpolated from: an alarm's exclusion (1 h)


def bin_index(t: float) -> int:
    """The quarter-hour bin of the UTC day holding time `t`."""
    return int((t % 86400.0) // BIN_S) % BINS


def _ready(dmed: list[float | None], born: list[float], i: int, t: float) -> float | None:
    # bin `i`'s median, once it holds DAY_MIN values and its first is from an earlier day
    return dmed[i] if t - born[i] >= _DAY_AGE_S else None


def _nearest(
    dmed: list[float | None], born: list[float], i: int, t: float, step: int
) -> tuple[int, float] | None:
    # the nearest ready bin from bin `i` in direction `step`: (distance, its median)
    for d in range(1, _GAP_BINS + 1):
        v = _ready(dmed, born, (i + step * d) % BINS, t)
        if v is not None:
            return d, v
    return None


def step_prediction(dmed: list[float | None], born: list[float], t: float) -> float | None:
    """The median of the bin holding `t` (the degradation and throughput baselines).

    The resource baseline's rule: the bin speaks once it holds `DAY_MIN` values from an earlier
    day. It needed more than 20 values, part of a second day, so on day 2 it never spoke. A bin
    left short (an alarm's exclusion skipped its minutes that day) is interpolated between the
    nearest ready bins within `_GAP_BINS` either side: without it the chosen daily predictor
    fell back to the 24-h median, far off under a daily swing, a false alarm on day 2 (drawn
    seed 1001, daily load 0.3, 29.8 h).
    """
    i = bin_index(t)
    own = _ready(dmed, born, i, t)
    if own is not None:
        return own
    before = _nearest(dmed, born, i, t, -1)
    after = _nearest(dmed, born, i, t, 1)
    if before is None or after is None:
        return None if before is None and after is None else (before or after)[1]
    (d, a), (e, b) = before, after
    return a + (b - a) * d / (d + e)


def smooth_prediction(dmed: list[float | None], born: list[float], t: float) -> float | None:
    """Linear between the medians of the two nearest bins' centres (the resource baseline): a
    step per bin would turn a steep daily rise into a sawtooth of residuals (and of
    de-seasonalised levels)."""
    pos = (t % 86400.0) / BIN_S - 0.5
    lo = math.floor(pos)
    w = pos - lo
    a = _ready(dmed, born, lo % BINS, t)
    b = _ready(dmed, born, (lo + 1) % BINS, t)
    if a is None or b is None:
        return a if w < 0.5 else b
    return a + w * (b - a)
