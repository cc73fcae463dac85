"""Cyclic failures tracker: periodic scans of each component's failure timestamps.

Three bands, because a cycle must repeat about 8-12 times before it can be told from chance
(research/detection.md section 2.4): periods of 60-450 s in a 1-h window scanned every 2 min,
60-1200 s in a 3-h window scanned every 10 min, and 1200-4000 s in a 12-h window scanned every
30 min; components take turns. The fast band exists because a 60 s cycle of 12-14 cycles lasts
only 12-14 min: a 10-min cadence often alarms after it has ended, and a 3-h window dilutes a
short episode with background failures. The detection delay is about 8 periods by construction.

Each scan looks at all failures and at each failure type alone (one shared periodogram pass),
since a cycle usually repeats one type against a background of six. The 3-h and 12-h bands
report a period only when two consecutive scans agree on it, and the fast/short bands and the
long band keep separate hold-offs. Method in `periodic.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import FAILURE_TYPES, Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.periodic import PeriodEstimate, find_periods
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

    __slots__ = (
        "codes",
        "hold_long",
        "hold_period",
        "hold_short",
        "name",
        "pending",
        "slot",
        "th",
        "times",
    )

    def __init__(self, name: str, th: Thresholds, slot: int = 0) -> None:
        self.name = name
        self.th = th
        self.slot = slot  # staggers scans across components, so no update pays for all of them
        self.times: list[float] = []
        self.codes: list[int] = []
        # one hold-off per band group: a false alarm of the 12-h band must not silence a true
        # short cycle for 12 h, and the other way round (see _held)
        self.hold_short = NEVER
        self.hold_long = NEVER
        self.hold_period = 0.0
        # [period, time] of the last unconfirmed detection per slow band (see close_minute)
        self.pending: dict[str, list[float]] = {}

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("name", "th", "slot"))

    def load(self, data: dict[str, Any]) -> None:
        if "hold_until" in data:  # state saved before the per-band hold-offs
            data = {**data, "hold_short": data["hold_until"], "hold_long": data["hold_until"]}
            data.pop("hold_until")
        load_slots(self, data)

    def add(self, times: list[float], codes: list[int]) -> None:
        """Record failures (in time order)."""
        self.times.extend(times)
        self.codes.extend(codes)

    def _bands(self, minute: int) -> list[tuple[str, float, float, float]]:
        bands = []
        if minute % 10 == self.slot % 10:
            bands.append(("short", self.th.cyc_short_window_s, 60.0, 1200.0))
        elif minute % 2 == self.slot % 2 and self.th.cyc_fast_window_s > 0:
            fast = self.th.cyc_fast_window_s
            bands.append(("fast", fast, 60.0, fast / self.th.cyc_min_cycles))
        if minute % 30 == (15 + self.slot) % 30:
            bands.append(("long", self.th.cyc_long_window_s, 1200.0, 4000.0))
        return bands

    def _confirmed(self, band: str, end: float, period: float) -> bool:
        """Slow bands report a period only when two consecutive scans agree on it.

        Early in an episode of period P the folded test can peak at P/2 (half the on-phase
        cycles plus background look like 8 cycles); one scan later P wins. Reporting the first
        peak would report the wrong period and its hold-off would silence the right one. The
        fast band and periods under 150 s stay unconfirmed: 12 cycles of 60 s last 12 min, less
        than two scans of the 3-h band.
        """
        if band == "fast" or period < 150.0:
            return True
        last = self.pending.get(band)
        cadence = 600.0 if band == "short" else 1800.0
        self.pending[band] = [period, end]
        return (
            last is not None
            and end - last[1] <= cadence + 1.0
            and abs(last[0] / period - 1) <= 0.03
        )

    def _held(self, end: float, long: bool, period: float) -> bool:
        """Whether an alarm of this band group at `end` repeats an episode already reported.

        Each group has its own hold-off. The other group's hold counts only when the new period
        is a multiple of the held one (within 5 %): the same cycle seen at a harmonic.
        """
        if end < (self.hold_long if long else self.hold_short):
            return True
        if end >= (self.hold_short if long else self.hold_long) or self.hold_period <= 0:
            return False
        lo, hi = sorted((period, self.hold_period))
        ratio = hi / lo
        return round(ratio) <= 12 and abs(ratio - round(ratio)) <= 0.05 * round(ratio)

    def _scan(
        self, times: np.ndarray, codes: np.ndarray, end: float, band: tuple[float, float, float]
    ) -> PeriodEstimate | None:
        """The best period over all failures and over each failure type alone.

        A cycle usually repeats one failure type (a nightly job timing out, a leak crashing),
        while the background mixes six. Scanning each type's timestamps alone removes most of
        the background: at P = 3600 s, k = 3 against 36 failures/h the all-failure fold test
        reaches z of about 6 after 12 cycles, the Timeout-only one well above 10.
        """
        window, pmin, pmax = band
        th = self.th
        lo = int(np.searchsorted(times, end - window, side="right"))
        c = codes[lo:]
        wanted: list[int] = []
        if c.size:
            valid = c[(c >= 0) & (c < len(FAILURE_TYPES))]
            counts = np.bincount(valid, minlength=len(FAILURE_TYPES))
            for code in np.nonzero(counts >= 2 * th.cyc_min_cycles)[0]:
                if counts[code] < 0.9 * c.size:  # else the all-failure scan is the same test
                    wanted.append(int(code))
        found = find_periods(
            times, end, window, pmin, pmax, th.cyc_min_cycles, th.cyc_power, codes, wanted
        )
        best: PeriodEstimate | None = None
        for est in found:
            if (
                est is not None
                and est.power >= th.cyc_power
                and est.fold_z >= th.cyc_z
                and est.cycles_on >= th.cyc_min_cycles
                and (best is None or est.fold_z > best.fold_z)
            ):
                best = est
        return best

    def close_minute(self, end: float) -> Alarm | None:
        """Run the scans due at the minute ending at `end`."""
        bands = self._bands(int(end // 60))
        if not bands:
            return None
        keep_from = end - max(
            self.th.cyc_long_window_s, self.th.cyc_short_window_s, self.th.cyc_fast_window_s
        )
        # one conversion of the (up to 12 h) list serves both the trim and the scans
        times = np.asarray(self.times, dtype=float)
        cut = int(np.searchsorted(times, keep_from))
        if cut:
            del self.times[:cut]
            del self.codes[:cut]
            times = times[cut:]
        all_codes = np.asarray(self.codes, dtype=np.int64)
        for band, window, pmin, pmax in bands:
            long = band == "long"
            est = self._scan(times, all_codes, end, (window, pmin, pmax))
            if est is None:
                self.pending.pop(band, None)
                continue
            if not self._confirmed(band, end, est.period_s):
                continue
            held = self._held(end, long, est.period_s)
            if long:
                self.hold_long = max(self.hold_long, end + window)
            else:
                self.hold_short = max(self.hold_short, end + window)
            self.hold_period = est.period_s
            if held:
                return None
            codes = all_codes[est.on_phase]
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
