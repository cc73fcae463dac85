"""Seasonal, robust baseline of a per-minute series, for the detection flow's detectors.

The flow's degradation detector (per-minute median log duration) and throughput detector
(successful completions per minute, Anscombe scale) need what `baselines.RealSeriesModel` gives
real metric series: a prediction that knows a daily load, and a robust scale of what is left.
This is the same method at a per-minute cadence, with state small and JSON-ready for the flow:

- **Three predictors** compete. `level`, the median of the last 24 h (the reference; what the
  detectors used before); `local`, the median of the last half hour, fed at once (not delayed),
  which follows a slow daily swing on the first day, before any season is known, with a lag of
  about 15 minutes (a step still stands out for minutes, long enough for the CUSUM; carrying
  it forward along its own slope removed the lag but made its errors autocorrelated, which fed
  the CUSUM false alarms). With `max_slope` (the degradation detector) it is carried forward
  along a steadier slope, the last hour's median against the hour before, upward only and at
  most `max_slope`: the evening rise of a daily load is then expected instead of lagged (it
  fed 7 of 12 false alarms on the daily-load benchmark, 2026-12-02), while a degradation,
  steeper than the cap, still outruns the prediction; and `daily`, the same phase of the last `K_DAYS` days: the medians of the quarter-hour
  bins (the seasonal sub-series of STL, Cleveland et al. 1990, made causal as in
  `baselines.py`; read in `daily_bins.py`), speaking from the next day once a bin holds most of a
  day's slot. A challenger is used only
  while its median absolute error over the last 4 h is clearly below the reference's (`ENTER`,
  `STAY`), so seasonality is detected, not assumed: on a flat series the 24-h median wins (less
  estimation noise) and nothing changes. With `smooth=True` (the resource detector) the daily
  predictor speaks from one day of history, interpolated linearly between bin centres (a step
  per bin turns a steep daily rise into a sawtooth), errors are compared over 24 h on the same
  minutes, and the season wins over `local` when both qualify. These did not carry over to
  the degradation detector: on a daily load they raised day-1 false alarms (2026-12-02). Until the errors are
  known (`MIN_ERR` minutes after the warm-up) a sample must be anomalous against every
  available predictor (`pick`), so the first hours of a daily swing cannot alarm either.
- **Robust scale** of the chosen predictor's residuals: 1.4826 * MAD (Hampel 1974) with
  `cusum.robust_scale`'s fallbacks, floored at `min_scale` (1 for Anscombe counts, Anscombe 1948).

Residuals are those of the predictions made at decision time, recorded when the sample joins the
baseline (the caller delays and filters samples, e.g. skips episodes), so the scale measures the
error the detector actually sees, lag included.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from typing import Any

import numpy as np

from prefect_ft.detection._state import dump_slots, load_slots
from prefect_ft.detection.cusum import robust_scale
from prefect_ft.detection.daily_bins import (
    BINS,
    DAY_MIN,
    bin_index,
    smooth_prediction,
    step_prediction,
)

__all__ = ["MinuteBaseline", "refresh_slot"]

LONG_N = 1440  # minutes in the reference median (24 h)
LOCAL_N = 30  # minutes in the local median
# minutes of the trailing slope that carries the local median forward: the median of the last
# hour minus the hour before. Two hour-medians are steady (their noise moves the 15.5-minute lag
# correction by ~0.005 in log units, 1/16 of a minute's scale), where a slope over the local
# window itself made the local errors autocorrelated (CUSUM false alarms)
SLOPE_N = 120
K_DAYS = 3  # days the daily predictor looks back
# residuals the predictors are compared on (24 h). Over 4 h, a slow ramp (a degradation) that
# filled a third of the window made the lagging `local` look better than the 24-h median, which
# then hid the rest of the ramp; a daily swing is off the 24-h median most of every day
ERR_N = 1440
MIN_ERR = 240  # residuals a predictor needs before it may be compared (4 h)
SCALE_N = 1440  # residuals the scale is computed on
# a challenger must cut the reference's median error by these factors to be chosen (enter) and
# to stay chosen; `local` must be clearly better (it would also follow a slow ramp, a
# degradation), as it is under a daily swing, not just a little better
ENTER = (1.0, 0.6, 0.8)
STAY = (1.0, 0.8, 0.9)
OVER_LOCAL = 0.8  # the daily predictor's error must be below this times `local`'s to replace it
NAMES = ("level", "local", "daily")


def refresh_slot(key: str, every: int) -> int:
    """The minute within each `every` on which the baseline keyed `key` refreshes, stable
    across processes and restarts (crc32, not the salted `hash`). Staggered this way, a refresh
    (medians of 1440 values) falls on 1/`every` of the minutes per baseline, instead of every
    baseline of every component on the same minute, which made the update's p99 (RESULTS.md,
    2026-12-02)."""
    return zlib.crc32(key.encode()) % every


def _amedian(a: np.ndarray) -> float:
    """`np.median` of a 1-D float array, to the last bit, without its wrapper (half of a
    refresh's cost): the same partition, the middle two averaged as (a + b) / 2 is, and NaN
    when the array holds one (NumPy's check of the partition's last element)."""
    n = a.size
    if n == 0:
        return math.nan
    k = n // 2
    part = np.partition(a, (k - 1, k, n - 1) if n % 2 == 0 else (k, n - 1))
    if math.isnan(part[n - 1]):
        return math.nan
    return float(part[k]) if n % 2 else 0.5 * (float(part[k - 1]) + float(part[k]))


def _median(values: Any) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


class MinuteBaseline:
    """Predictions and residual scale for one per-minute series (see the module docstring)."""

    __slots__ = (
        "bins",
        "born",
        "choice",
        "dmed",
        "err",
        "level",
        "local",
        "long",
        "max_slope",
        "min_scale",
        "res",
        "scales",
        "slope",
        "smooth",
        "trail",
    )

    def __init__(
        self, min_scale: float = 0.0, smooth: bool = False, max_slope: float = 0.0
    ) -> None:
        # smooth=True (the resource detector): the daily predictor speaks after one day,
        # interpolated between bin centres, errors compared over 24 h, the season preferred
        # over `local`. False keeps the degradation/throughput behaviour measured in
        # RESULTS.md: these settings raised day-1 false alarms there (see the module docstring)
        self.smooth = smooth
        self.min_scale = min_scale
        # the local median is carried forward along the trailing slope, capped at `max_slope`
        # per minute (0: not at all). A daily swing rises slower than a degradation does, so
        # the cap is the slowest rise the caller calls a degradation: within it the rise is
        # expected, beyond it only the cap is, and the CUSUM still sees the rest
        self.max_slope = max_slope
        self.trail: deque[float] = deque(maxlen=SLOPE_N)
        # re-estimated with the level (every refresh): it moves slowly, and two medians of an
        # hour every minute cost ~0.1 s per 24-h pass of four components
        self.slope = 0.0
        self.long: deque[float] = deque(maxlen=LONG_N)
        self.local: deque[float] = deque(maxlen=LOCAL_N)
        # one deque per quarter-hour of the UTC day; a bin needs more than one day's slot
        self.bins: list[deque[float]] = [deque(maxlen=K_DAYS * 15) for _ in range(BINS)]
        self.dmed: list[float | None] = [None] * BINS  # each bin's median (None: too few)
        # when each bin got its first value: a bin speaks only from the next day on; on the
        # first day the previous quarter-hour's bin is just a stale local median
        self.born: list[float] = [1e300] * BINS  # finite: the state is strict JSON
        self.err: list[deque[float]] = [deque(maxlen=ERR_N if smooth else MIN_ERR) for _ in NAMES]
        self.res: list[deque[float]] = [deque(maxlen=SCALE_N) for _ in NAMES]
        self.level = 0.0
        self.scales = [0.0, 0.0, 0.0]
        self.choice = 0

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("max_slope",))  # configuration, from the thresholds

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)
        if "dmed" not in data:  # a snapshot from before the cached bin medians
            self.dmed = [_median(b) if len(b) >= DAY_MIN else None for b in self.bins]
            self.born = [-1e300 if b else 1e300 for b in self.bins]

    @property
    def name(self) -> str:
        """The predictor in use: "level", "local" or "daily"."""
        return NAMES[self.choice]

    @property
    def scale(self) -> float:
        """Robust scale of the chosen predictor's residuals (0 while learning)."""
        return self.scales[self.choice]

    def predictions(self, t: float) -> list[float | None]:
        """Each predictor's forecast for the minute ending at `t` (None while it cannot)."""
        return [
            self.level if self.scales[0] > 0.0 else None,
            self._local(),
            self._daily(t - 30.0) if self.smooth else self._bin(t),
        ]

    def _local(self) -> float | None:
        # the median of the last half hour, which lags a trend by (LOCAL_N + 1) / 2 minutes,
        # plus that lag times the trailing slope (set by `refresh`)
        if len(self.local) < LOCAL_N // 2:
            return None
        return _median(self.local) + self.slope * (len(self.local) + 1) / 2.0

    def _trail_slope(self) -> float:
        # within [0, max_slope]: upward only, because the trailing slope lags the current one
        # by an hour, so after a fall it would still pull the prediction down as the series
        # levels off (near a daily trough), and every detector on this baseline that alarms
        # on a rise would then see one. From one hour of values, not SLOPE_N: the 2-h wait cost
        # 4 false alarms at 2.0-2.2 h, on the daily rise (RESULTS.md, 2026-12-03)
        if self.max_slope <= 0.0 or len(self.trail) < SLOPE_N // 2:
            return 0.0
        vals = list(self.trail)
        half = len(vals) // 2
        vals = vals[-2 * half :]
        slope = (_median(vals[half:]) - _median(vals[:half])) / half
        return min(max(slope, 0.0), self.max_slope)

    def _bin(self, t: float) -> float | None:
        return step_prediction(self.dmed, self.born, t)

    def _daily(self, t: float) -> float | None:
        return smooth_prediction(self.dmed, self.born, t)

    def observe(self, x: float) -> None:
        """Feed the current minute's value to the local predictor, after predicting it."""
        self.local.append(x)
        if self.max_slope > 0.0:
            self.trail.append(x)

    def pick(self, preds: list[float | None], up: bool) -> int | None:
        """Index of the prediction to judge a sample by: the chosen one once the errors are
        known, else the most lenient available one (the highest when alarming on rises, else
        the lowest); None while the reference cannot predict."""
        if preds[0] is None:
            return None
        if len(self.err[0]) >= MIN_ERR:
            return self.choice if preds[self.choice] is not None else 0
        have = [m for m, p in enumerate(preds) if p is not None]
        return (max if up else min)(have, key=lambda m: preds[m])  # type: ignore[arg-type,return-value]

    def learn(self, t: float, x: float, preds: list[float | None]) -> None:
        """Add a delayed sample `x` (minute ending `t`) with the predictions made for it."""
        self.long.append(x)
        i = bin_index(t)
        self.bins[i].append(x)
        self.born[i] = min(self.born[i], t)
        self.dmed[i] = _median(self.bins[i]) if len(self.bins[i]) >= DAY_MIN else None
        for m, p in enumerate(preds):
            if p is not None:
                self.err[m].append(abs(x - p))
                self.res[m].append(x - p)

    def refresh(self) -> None:
        """Recompute the 24-h level, the choice of predictor and the scales."""
        self.slope = self._trail_slope()
        if not self.long:
            return
        arr = np.fromiter(self.long, float)
        self.level = _amedian(arr)
        if not self.smooth:
            self._choose_recent()
        else:
            self._choose_day()
        for m, r in enumerate(self.res):
            if len(r) < 20:
                # before any residual the reference is scaled by the spread of its own values
                src = arr if m == 0 else None
                if src is None or src.size < 20:
                    self.scales[m] = 0.0
                    continue
                dev = np.abs(src - self.level)
            else:
                res = np.fromiter(r, float)
                dev = np.abs(res - _amedian(res))
            scale = robust_scale(_amedian(dev), float(dev.mean()), self.level)
            self.scales[m] = max(scale, self.min_scale)

    def _choose_recent(self) -> None:
        # a challenger is chosen when its median error over the last 4 h is below ENTER times
        # the reference's, and kept while below STAY times it (a band, so the choice does not
        # flip back and forth near the boundary)
        errs = [_median(e) if len(e) >= MIN_ERR else math.inf for e in self.err]
        best = 0
        for m in (1, 2):
            limit = (STAY if m == self.choice else ENTER)[m] * errs[0]
            if errs[m] < limit and errs[m] < errs[best]:
                best = m
        # the season must also beat `local` clearly to take over from it (`OVER_LOCAL`) and
        # not be worse to stay: from day 2 a bin is one day's median, whose error persists for
        # its quarter-hour, and chosen on a marginal edge over `local` it doubled the
        # degradation false alarms on a daily load (4 -> 8, RESULTS.md 2026-12-02)
        over = 1.0 if self.choice == 2 else OVER_LOCAL
        if best == 2 and errs[1] < math.inf and errs[2] >= over * errs[1]:
            local_ok = errs[1] < (STAY if self.choice == 1 else ENTER)[1] * errs[0]
            best = 1 if local_ok else 0
        self.choice = best

    def _choose_day(self) -> None:
        # each challenger against the reference over the same minutes (their common suffix)
        # (numpy: sorting 1440 Python floats four times per refresh cost the p99 update)
        errs = [0.0, math.inf, math.inf]
        ref = np.fromiter(self.err[0], float)
        for m in (1, 2):
            n = min(len(self.err[m]), ref.size)
            if n >= MIN_ERR:
                mine = np.fromiter(self.err[m], float)[-n:]
                errs[m] = _amedian(mine) / max(_amedian(ref[-n:]), 1e-12)
        # a challenger is chosen when its error is below ENTER times the reference's, and kept
        # while below STAY times it (a band, so that near the boundary the baseline does not
        # flip back and forth; the reference is the default, never held against the evidence).
        # The season wins over `local` whenever it qualifies: `local` follows any drift, a
        # degradation included, so it is only the stand-in until a day is known
        ok = [errs[m] < (STAY if m == self.choice else ENTER)[m] for m in range(3)]
        self.choice = 2 if ok[2] else 1 if ok[1] else 0

    def relearn(self) -> None:
        """After an alarm: forget the level (a lasting shift is the new normal); the daily shape,
        the predictors' errors and the choice among them are kept."""
        self.long.clear()
        self.local.clear()
        self.trail.clear()
        self.slope = 0.0
        self.scales[0] = 0.0
