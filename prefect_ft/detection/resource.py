"""Resource exhaustion tracker: Theil-Sen time to the limit on memory floors and CPU, per component.

Garg et al. (1998) / Grottke et al. (2006) time-to-exhaustion. Garbage-collected memory is a
sawtooth, and what leaks is its floor, so memory is tracked as the minimum over the last 3 minutes
(one GC cycle of the generator, research/detection.md section 2.3); CPU as the per-minute mean.
A cheap least-squares gate skips the O(n^2) Theil-Sen fit on flat series.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.exhaustion import time_to_limit
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["ResourceTracker", "exhaustion_severity"]

_FLOOR_MINUTES = 3
_REF_MINUTES = 360


def exhaustion_severity(tte_s: float) -> Severity:
    """< 15 min CRITICAL, < 1 h HIGH, < 6 h MEDIUM, else LOW (research/detection.md 2.6)."""
    if tte_s < 900:
        return Severity.CRITICAL
    if tte_s < 3600:
        return Severity.HIGH
    if tte_s < 6 * 3600:
        return Severity.MEDIUM
    return Severity.LOW


class ResourceTracker:
    """Time-to-limit detector for one resource ("memory" or "cpu") of one component."""

    __slots__ = ("hold_until", "kind", "limit", "long", "mins", "name", "series", "th")

    def __init__(self, name: str, kind: str, th: Thresholds) -> None:
        self.name = name
        self.kind = kind
        self.th = th
        self.mins: deque[float] = deque(maxlen=_FLOOR_MINUTES)
        self.series: deque[list[float]] = deque(maxlen=max(10, int(th.exh_window_s // 60)))
        self.long: deque[float] = deque(maxlen=_REF_MINUTES)
        self.limit = 100.0
        self.hold_until = NEVER

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("name", "th", "kind"))

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)

    def close_minute(self, end: float, values: np.ndarray, limit: float) -> Alarm | None:
        """Close the minute ending at `end` with that minute's samples (NaNs ignored)."""
        values = values[np.isfinite(values)]
        if values.size == 0 or not math.isfinite(limit) or limit <= 0:
            return None
        self.limit = limit
        if self.kind == "memory":
            self.mins.append(float(values.min()))
            level = min(self.mins)
        else:
            level = float(values.mean())
        self.series.append([end, level])
        self.long.append(level)
        if len(self.series) < 10 or int(end // 60) % 2:
            return None  # every other minute: a minute of lead time is not worth the cost
        arr = np.asarray(self.series, dtype=float)
        t, x = arr[:, 0], arr[:, 1]
        tc = t - t.mean()
        slope_ls = float((tc * (x - x.mean())).sum() / (tc * tc).sum())
        if slope_ls <= 0 or (limit - x[-1]) / slope_ls > 3 * self.th.exh_horizon_s:
            return None
        est = time_to_limit(t, x, limit, end, self.th.exh_alpha)
        if est is None:
            return None
        span = t[-1] - t[0]
        half = t.size // 2
        recent = time_to_limit(t[half:], x[half:], limit, end, self.th.exh_alpha)
        if recent is not None and recent.slope_lo > est.slope:
            # the trend steepened inside the window (a leak that started recently): the recent
            # half is what will reach the limit, and the full window would overstate the time
            est, span = recent, t[-1] - t[half]
        rise = est.slope * span
        noise = max(est.noise, 1e-9 * limit)
        # CPU also needs a real rise: a busy stage sits near 100 % by design (saturation)
        min_rise = self.th.exh_cpu_min_rise if self.kind == "cpu" else 0.0
        if not (
            est.slope_lo > 0
            and est.tte_lo_s < self.th.exh_horizon_s
            and rise > self.th.exh_min_ratio * noise
            and rise > min_rise
        ):
            return None
        held = end < self.hold_until
        self.hold_until = end + self.th.holdoff_s
        if held:
            return None
        ref = float(np.median(np.fromiter(self.long, float)))
        onset = max(end - _REF_MINUTES * 60.0, end - max(0.0, est.level - ref) / est.slope)
        unit = "MB" if self.kind == "memory" else "%"
        return Alarm(
            pattern=Pattern.EXHAUSTION,
            components=(self.name,),
            onset=min(onset, end),
            at=end,
            severity=exhaustion_severity(est.tte_s),
            failure_type=FailureType.RESOURCE_EXHAUSTION,
            score=est.tte_lo_s,
            evidence=(
                ("tte_s", est.tte_s),
                ("tte_lo_s", est.tte_lo_s),
                ("slope_per_min", est.slope * 60),
                ("level", est.level),
                ("limit", limit),
                ("is_cpu", float(self.kind == "cpu")),
            ),
            explanation=(
                f"{self.name}: {self.kind} at {est.level:.0f} {unit} rising "
                f"{est.slope * 60:.1f} {unit}/min; limit {limit:.0f} {unit} in "
                f"{est.tte_s / 60:.0f} min (pessimistic {est.tte_lo_s / 60:.0f} min)"
            ),
        )
