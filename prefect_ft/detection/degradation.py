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
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.cusum import GaussianCusum
from prefect_ft.detection.minute_baseline import MinuteBaseline
from prefect_ft.detection.thresholds import Thresholds
from prefect_ft.detection.trend import mann_kendall_z, theil_sen_slope

__all__ = ["DegradationTracker", "degradation_severity"]

_BASELINE_DELAY_S = 600.0
_REFRESH_EVERY = 15  # minutes between baseline refreshes (median of 1440 values is not free)
_TREND_EVERY = 5  # minutes between Mann-Kendall checks


def degradation_severity(ratio: float) -> Severity:
    """Severity from the latency ratio over baseline (midpoints of the 1.2/1.5/2/3x grid)."""
    if ratio >= 2.45:
        return Severity.CRITICAL
    if ratio >= 1.73:
        return Severity.HIGH
    if ratio >= 1.34:
        return Severity.MEDIUM
    return Severity.LOW


class DegradationTracker:
    """Latency degradation detector for one component, fed one closed minute at a time."""

    __slots__ = (
        "base",
        "closed",
        "cusum",
        "exclude_until",
        "hold_until",
        "med",
        "name",
        "pending",
        "recent",
        "scale",
        "th",
    )

    def __init__(self, name: str, th: Thresholds) -> None:
        self.name = name
        self.th = th
        # the 24-h median (as before), the last hour's or the same phase of past days, whichever
        # predicts best: a daily load is a baseline, not a degradation (minute_baseline.py)
        self.base = MinuteBaseline()
        self.pending: deque[list[float]] = deque()  # [end, x, level, local, daily]
        self.recent: deque[list[float]] = deque(maxlen=th.mk_window_min)
        self.cusum = GaussianCusum(th.deg_k, th.deg_h)
        self.med = 0.0  # the 24-h level
        self.scale = 0.0  # 0 while learning
        self.closed = 0
        self.hold_until = NEVER
        self.exclude_until = NEVER

    def state(self) -> dict[str, Any]:
        return {**dump_slots(self, skip=("name", "th", "base")), "base": self.base.state()}

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, {k: v for k, v in data.items() if k != "base"})
        self.base.load(data["base"])

    def close_minute(self, end: float, log_durations: np.ndarray) -> Alarm | None:
        """Close the minute ending at `end` with the log durations of tasks that ended in it."""
        self.closed += 1
        preds = self.base.predictions(end)
        if log_durations.size >= self.th.deg_min_n:
            s = np.sort(log_durations)  # the median; np.median's overhead is 3x a small sort
            x = 0.5 * float(s[(s.size - 1) // 2] + s[s.size // 2])
            self.pending.append([end, x, *preds])
            self.base.observe(x)
        else:
            x = math.nan
        while self.pending and self.pending[0][0] <= end - _BASELINE_DELAY_S:
            m_end, v, *made = self.pending.popleft()
            if m_end > self.exclude_until:
                self.base.learn(m_end, v, made)
        if self.closed % _REFRESH_EVERY == 0 and len(self.base.long) >= self.th.deg_warmup_min:
            self.base.refresh()
            self.med, self.scale = self.base.level, self.base.scale
        if math.isnan(x):
            return None
        i = self.base.pick(preds, up=True)
        p = None if i is None else preds[i]
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
        held = end < self.hold_until
        self.hold_until = end + self.th.holdoff_s
        onset = self.cusum.zero_at if crossed else trend[0]  # type: ignore[index]
        score = self.cusum.s if crossed else trend[1]  # type: ignore[index]
        self.cusum.reset(end)
        self.pending = deque(p for p in self.pending if p[0] <= onset)
        if held:
            return None
        self.exclude_until = self.hold_until
        alarm = self._alarm(end, onset, score, "cusum" if crossed else "mann_kendall")
        # Relearn from here: a lasting shift (a deploy, a new model) is the new normal, and
        # judging it against the old baseline would re-alarm after every hold-off.
        self.base.relearn()
        self.pending.clear()
        self.scale = 0.0
        return alarm

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
