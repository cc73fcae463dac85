"""Cyclic failures tracker: periodic scans of each component's failure timestamps.

Three bands, because a cycle must repeat about 8-12 times before it can be told from chance
(research/detection.md section 2.4): periods of 60-450 s in a 1-h window scanned every 2 min,
60-1200 s in a 3-h window scanned every 10 min, and 1200-4000 s in a 12-h window scanned every
30 min; components take turns. The fast band exists because a 60 s cycle of 12-14 cycles lasts
only 12-14 min: a 10-min cadence often alarms after it has ended, and a 3-h window dilutes a
short episode with background failures. The detection delay is about 8 periods by construction.
Method in `periodic.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import FAILURE_TYPES, Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.periodic import find_period
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["CyclicTracker", "cyclic_severity"]


def cyclic_severity(failures_per_hour: float) -> Severity:
    """Severity from the extra failures per hour the cycle causes (per cycle x cycles per hour)."""
    if failures_per_hour >= 100:
        return Severity.CRITICAL
    if failures_per_hour >= 20:
        return Severity.HIGH
    if failures_per_hour >= 5:
        return Severity.MEDIUM
    return Severity.LOW


class CyclicTracker:
    """Periodicity scans for one component."""

    __slots__ = ("codes", "hold_until", "name", "slot", "th", "times")

    def __init__(self, name: str, th: Thresholds, slot: int = 0) -> None:
        self.name = name
        self.th = th
        self.slot = slot  # staggers scans across components, so no update pays for all of them
        self.times: list[float] = []
        self.codes: list[int] = []
        self.hold_until = NEVER

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("name", "th", "slot"))

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)

    def add(self, times: list[float], codes: list[int]) -> None:
        """Record failures (in time order)."""
        self.times.extend(times)
        self.codes.extend(codes)

    def close_minute(self, end: float) -> Alarm | None:
        """Run the scans due at the minute ending at `end`."""
        minute = int(end // 60)
        bands = []
        if minute % 10 == self.slot % 10:
            bands.append((self.th.cyc_short_window_s, 60.0, 1200.0))
        elif minute % 2 == self.slot % 2 and self.th.cyc_fast_window_s > 0:
            fast = self.th.cyc_fast_window_s
            bands.append((fast, 60.0, fast / self.th.cyc_min_cycles))
        if minute % 30 == (15 + self.slot) % 30:
            bands.append((self.th.cyc_long_window_s, 1200.0, 4000.0))
        if not bands:
            return None
        keep_from = end - max(
            self.th.cyc_long_window_s, self.th.cyc_short_window_s, self.th.cyc_fast_window_s
        )
        cut = int(np.searchsorted(np.asarray(self.times), keep_from))
        if cut:
            del self.times[:cut]
            del self.codes[:cut]
        times = np.asarray(self.times, dtype=float)
        for window, pmin, pmax in bands:
            est = find_period(
                times, end, window, pmin, pmax, self.th.cyc_min_cycles, self.th.cyc_power
            )
            if est is None or not (
                est.power >= self.th.cyc_power
                and est.fold_z >= self.th.cyc_z
                and est.cycles_on >= self.th.cyc_min_cycles
            ):
                continue
            held = end < self.hold_until
            self.hold_until = max(self.hold_until, end + window)
            if held:
                return None
            codes = np.asarray(self.codes, dtype=np.int64)[est.on_phase]
            codes = codes[(codes >= 0) & (codes < len(FAILURE_TYPES))]
            ftype = (
                FAILURE_TYPES[int(np.bincount(codes).argmax())]
                if codes.size
                else FailureType.PROCESSING_ERROR
            )
            per_hour = est.per_cycle * 3600.0 / est.period_s
            return Alarm(
                pattern=Pattern.CYCLIC,
                components=(self.name,),
                onset=est.onset,
                at=end,
                severity=cyclic_severity(per_hour),
                failure_type=ftype,
                score=est.fold_z,
                evidence=(
                    ("period_s", est.period_s),
                    ("power", est.power),
                    ("fold_z", est.fold_z),
                    ("cycles", float(est.cycles)),
                    ("cycles_on", float(est.cycles_on)),
                    ("per_cycle", est.per_cycle),
                ),
                explanation=(
                    f"{self.name}: about {est.per_cycle:.1f} extra failures every "
                    f"{est.period_s:.0f} s over {est.cycles_on} of {est.cycles} cycles, "
                    f"mostly {ftype}"
                ),
            )
        return None
