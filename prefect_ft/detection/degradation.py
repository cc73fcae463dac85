"""Performance degradation: CUSUM on robust z of per-minute median log latency, plus a
Mann-Kendall / Theil-Sen check for slow ramps, per component.

- Per-minute medians of log duration are robust to the log-normal and Pareto tails, and their
  baseline (median and 1.4826 * MAD over a trailing 24 h that skips episodes) measures the noise of
  the aggregated series, not of single tasks (research/detection.md section 2.2).
- One-sided upward CUSUM (Page 1954) with k = 0.5 catches steps and fast ramps. After an alarm
  the baseline is relearnt (about 70 minutes), so a lasting shift raises one alarm.
- Mann-Kendall (Mann 1945; Kendall 1975) over the last 30 minutes with a Theil-Sen slope (Theil
  1950; Sen 1968) above a practical effect (+10 %/h) catches slow ramps the CUSUM would only see
  late; both thresholds are set on fault-free data for ARL0 >= 500 h.
- While the 24-h level is the chosen predictor, a minute is judged against the lower of the
  daily and half-hour predictions when both lie above the level (`agreed_prediction`): a daily
  swing under a noisy stage's scale does not win the choice, yet it is a season, not a change.
- Optionally (`EngineConfig.degradation_common_mode`) each stage is judged relative to the
  other stages: its minute's log durations minus the median of the other stages' minute
  medians (`common_mode`). A load that slows every stage together (a daily pattern) cancels,
  so a ramp on one stage slower than the daily swing shows on the first day, before any daily
  prediction exists. The price: a slowdown of every stage at once cancels too.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.minute_tracker import MinuteTracker
from prefect_ft.detection.thresholds import Thresholds
from prefect_ft.detection.trend import mann_kendall_z, theil_sen_slope

__all__ = [
    "DegradationTracker",
    "agreed_prediction",
    "common_mode",
    "degradation_severity",
    "minute_median",
]

_TREND_EVERY = 5  # minutes between Mann-Kendall checks


def minute_median(log_durations: np.ndarray, min_n: int) -> float:
    """Median of one minute's log durations; NaN with fewer than `min_n` of them."""
    if log_durations.size < min_n:
        return math.nan
    s = np.sort(log_durations)  # np.median's overhead is 3x a small sort
    return 0.5 * float(s[(s.size - 1) // 2] + s[s.size // 2])


def common_mode(medians: list[float], c: int) -> float:
    """What every stage but `c` shared this minute: the median of their minute medians; NaN
    unless every other stage has one (stages run at different speeds, so a median over a
    changing set would jump by their ratio, e.g. at a history's end)."""
    others = [m for j, m in enumerate(medians) if j != c]
    if not others or any(math.isnan(m) for m in others):
        return math.nan
    return float(np.median(others))


def agreed_prediction(preds: list[float | None], i: int | None) -> float | None:
    """The prediction a minute is judged by: `preds[i]` (`MinuteBaseline.pick`'s), unless the
    24-h level (`i == 0`) is chosen and both challengers, the same phase of past days
    (`preds[2]`) and the last half hour (`preds[1]`), lie above it: then the lower of the two.

    Two predictors that share no data agreeing on an offset is a season, not a change: on a
    noisy stage the daily swing is under a minute's scale, so the daily predictor's error is not
    clearly below the level's and the level stays chosen, while the morning sits half a scale
    above it for hours (the CUSUM sums that: drawn seed 1000's ipc false alarm on the daily-load
    benchmark, 2026-12-03). A degradation moves the half hour but not past days' bins, so the
    lower of the two stays at the season and the rise still counts; on day 1 (no daily
    prediction) nothing changes. A forecast combination in the spirit of Bates and Granger
    (1969), taken conservatively (the minimum) so it never follows a change."""
    if i is None:
        return None
    p, local, daily = preds[i], preds[1], preds[2]
    if i != 0 or p is None or local is None or daily is None:
        return p
    return max(p, min(local, daily))


def degradation_severity(ratio: float) -> Severity:
    """Severity from the latency ratio over baseline (midpoints of the 1.2/1.5/2/3x grid)."""
    if ratio >= 2.45:
        return Severity.CRITICAL
    if ratio >= 1.73:
        return Severity.HIGH
    if ratio >= 1.34:
        return Severity.MEDIUM
    return Severity.LOW


class DegradationTracker(MinuteTracker):
    """Latency degradation detector for one component, fed one closed minute at a time."""

    __slots__ = ("med", "recent")

    def __init__(self, name: str, th: Thresholds) -> None:
        # the 24-h median (as before), the last half hour or the same phase of past days,
        # whichever predicts best: a daily load is a baseline, not a degradation
        # The local median follows a daily rise along its trailing slope, up to the slowest
        # rise the trend test calls a degradation (`ts_min_ratio_per_hour`): the evening rise
        # of a daily load is expected, not a 15-minute lag to alarm on
        super().__init__(name, th, max_slope=math.log(th.ts_min_ratio_per_hour) / 60.0)
        self.recent: deque[list[float]] = deque(maxlen=th.mk_window_min)
        self.med = 0.0  # the 24-h level

    def _refreshed(self) -> None:
        self.med, self.scale = self.base.level, self.base.scale

    def close_minute(self, end: float, log_durations: np.ndarray) -> Alarm | None:
        """Close the minute ending at `end` with the log durations of tasks that ended in it."""
        preds = self.base.predictions(end)
        x = minute_median(log_durations, self.th.deg_min_n)
        self._advance(end, None if math.isnan(x) else x, preds)
        if math.isnan(x):
            return None
        i = self.base.pick(preds, up=True)
        p = agreed_prediction(preds, i)
        # de-seasonalised: the value as if at the 24-h level (what the trend test and the
        # ratio read); the identity while the 24-h median is the chosen predictor
        seasonal = 0.0 if p is None or preds[0] is None else p - preds[0]
        self.recent.append([end, x - seasonal])
        if self.scale <= 0.0 or p is None:
            return None
        z = min((x - p) / self.scale, self.th.deg_z_clip)
        crossed = self.cusum.step(z, end - 60.0)
        trend = None
        if (
            not crossed
            and self.closed % _TREND_EVERY == 0
            and len(self.recent) >= self.recent.maxlen
            and i != 1  # the local median follows any drift: only the CUSUM judges against it
        ):
            trend = self._trend()
        if not crossed and trend is None:
            return None
        onset, score = (self.cusum.zero_at, self.cusum.s) if trend is None else trend
        # read before `_fire` relearns the baseline
        alarm = self._alarm(end, onset, score, "cusum" if crossed else "mann_kendall")
        return alarm if self._fire(end, onset) else None

    def _trend(self) -> tuple[float, float] | None:
        arr = np.asarray(self.recent, dtype=float)
        t, x = arr[:, 0], arr[:, 1]
        z = mann_kendall_z(x)
        if z < self.th.mk_z:
            return None
        slope, intercept = theil_sen_slope(t, x)
        if slope * 3600.0 < math.log(self.th.ts_min_ratio_per_hour):
            return None
        # onset: where the fitted line leaves the baseline level
        onset = (self.med - intercept) / slope if slope > 0 else t[0]
        return float(min(max(onset, t[0] - 3600.0), t[-1])), z

    def _alarm(self, end: float, onset: float, score: float, how: str) -> Alarm:
        # the latency ratio now: the last two minutes (a step is visible there at once, and a
        # ramp is at its highest)
        last = [v for _, v in list(self.recent)[-2:]]
        ratio = math.exp(float(np.mean(last)) - self.med)
        return Alarm(
            pattern=Pattern.DEGRADATION,
            components=(self.name,),
            onset=onset,
            at=end,
            severity=degradation_severity(ratio),
            failure_type=FailureType.PERFORMANCE_DEGRADATION,
            score=float(score),
            evidence=(
                ("latency_ratio", ratio),
                ("baseline_median_s", math.exp(self.med)),
                ("baseline_scale_log", self.scale),
                ("by_trend", float(how != "cusum")),
            ),
            explanation=(
                f"{self.name}: median latency {ratio:.2f}x its baseline "
                f"{math.exp(self.med):.3g} s ({how})"
            ),
        )
