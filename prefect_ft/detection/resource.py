"""Resource exhaustion tracker: Theil-Sen time to the limit on memory floors and CPU, per component.

Garg et al. (1998) / Grottke et al. (2006) time-to-exhaustion. Garbage-collected memory is a
sawtooth, and what leaks is its floor, so memory is tracked as the minimum over the last 3 minutes
(one GC cycle of the generator, research/detection.md section 2.3); CPU as the per-minute mean.

Two fits, both Theil-Sen with a confidence interval (`exhaustion.time_to_limit`):

- a short window (`exh_window_s`, per-minute points), for fast leaks; when the trend steepened
  inside it, its recent half is used;
- long windows (`exh_long_window_s` halved down to 2 x the short window: 8 h, 4 h, 2 h, 1 h) on
  5-minute block means of the floor, for slow leaks, whose slope a 30-minute window cannot pin
  down. The longest window that is both significant and linear is taken (a multi-window choice
  in the spirit of adaptive windowing, Bifet and Gavalda 2007): linear means the Theil-Sen
  slope of each half agrees with the window's (a Chow-style split test, Chow 1960), so neither a
  window reaching back before the leak's onset nor a load step is used. A linear long fit
  supplies the alarm's slope and TTE; the short window overrides it only when it is linear and
  `_STEEPER` times steeper (a new, faster leak), because its interval is too narrow (overlapping
  3-minute floors are not independent points). CPU short-window alarms must be linear too (a
  flash crowd is a step, not a trend).

Memory that follows a daily pattern (a morning batch window, a busy hour) rises steeply
every day without leaking. Each minute's memory floor therefore also feeds the same seasonal baseline
as the degradation detector (`minute_baseline.py`), delayed and skipping alarms; once the same
quarter-hour of past days predicts the level clearly better than the 24-h median (seasonality
detected, not assumed), the fits run on the de-seasonalised level, level - (daily - 24-h
median) (the seasonal sub-series of STL, Cleveland et al. 1990), against the limit shifted by
the same offset now, so the room left is the raw one. A leak does not repeat at the same phase,
so it stays in the de-seasonalised series; and a leak makes the stale daily predictor worse than
the 24-h median, so it never switches the correction on by itself.

Levels are time-stamped where observed (the floor at its minimum sample, the CPU mean at the
minute's centre), which removes a ~1.5-minute lag of a rising floor from the TTE.

Cost: per minute O(1) Python (a block accumulator); the O(n^2) fits (n <= 96 blocks, <= 30
minutes) run every other minute only behind a cheap pure-Python gate (Bartlett's three-group
slope of the short window, the end-point slope of the longest long window: the limit within 3
horizons, and for CPU half the minimum rise).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import Alarm
from prefect_ft.detection.exhaustion import (
    BLOCK_S,
    exhaustion_alarm,
    exhaustion_severity,
    gate,
    is_linear,
    long_fit,
    long_windows,
    time_to_limit,
)
from prefect_ft.detection.minute_baseline import MinuteBaseline, refresh_slot
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["ResourceTracker", "exhaustion_severity"]

_FLOOR_MINUTES = 3
_REF_MINUTES = 360
_STEEPER = 3.0  # a short-window slope overrides a linear long trend only if this much steeper
_SEASON_DELAY_S = 600.0  # a level joins the seasonal baseline this much later
_SEASON_REFRESH = 15  # minutes between refreshes of the seasonal baseline


class ResourceTracker:
    """Time-to-limit detector for one resource ("memory" or "cpu") of one component."""

    __slots__ = (
        "blk",
        "blocks",
        "closed",
        "hold_until",
        "kind",
        "limit",
        "mins",
        "name",
        "pending",
        "raw",
        "season",
        "series",
        "slot",
        "th",
        "wins",
    )

    def __init__(self, name: str, kind: str, th: Thresholds) -> None:
        self.name = name
        self.kind = kind
        self.th = th
        self.wins = long_windows(th)
        self.mins: deque[list[float]] = deque(maxlen=_FLOOR_MINUTES)
        self.series: deque[list[float]] = deque(maxlen=max(10, int(th.exh_window_s // 60)))
        self.raw: deque[float] = deque(maxlen=self.series.maxlen)  # levels before the offset
        n_blk = max(int(th.exh_long_window_s // BLOCK_S), _REF_MINUTES * 60 // int(BLOCK_S))
        self.blocks: deque[list[float]] = deque(maxlen=n_blk)
        self.blk = [0.0, 0.0, 0.0, -1.0]  # time sum, level sum, minutes, block index
        self.limit = 100.0
        self.hold_until = NEVER
        self.season = MinuteBaseline(smooth=True)
        # its own minute of the 15 (staggered with the duration baselines, `refresh_slot`)
        self.slot = refresh_slot(f"ResourceTracker:{kind}:{name}", _SEASON_REFRESH)
        self.pending: deque[list[float]] = deque()  # [end, level, *predictions]
        self.closed = 0

    def state(self) -> dict[str, Any]:
        return {
            **dump_slots(self, skip=("name", "th", "kind", "wins", "season", "slot")),
            "season": self.season.state(),
        }

    def load(self, data: dict[str, Any]) -> None:
        data = dict(data)
        if "season" in data:
            self.season.load(data.pop("season"))
        data.pop("long", None)  # a snapshot from before the long windows: no blocks yet
        mins = data.get("mins")
        if isinstance(mins, dict) and any(not isinstance(m, list) for m in mins.get("deque", [])):
            del data["mins"]  # untimed floors of that version: refill within 3 minutes
        load_slots(self, data)

    def close_minute(self, end: float, values: np.ndarray, limit: float) -> Alarm | None:
        """Close the minute ending at `end` with that minute's samples (NaNs ignored)."""
        values = values[np.isfinite(values)]
        if values.size == 0 or not math.isfinite(limit) or limit <= 0:
            return None
        self.limit = limit
        # Time-stamp each level where it was observed (the samples are spread evenly over the
        # minute): the floor at its minimum sample, the CPU mean at the minute's centre. Stamping
        # a 3-minute floor at the minute's end would lag a rising floor by ~1.5 minutes.
        step = 60.0 / values.size
        if self.kind == "memory":
            i = int(values.argmin())
            self.mins.append([end - 60.0 + (i + 0.5) * step, float(values[i])])
            at, level = min(self.mins, key=lambda m: m[1])
        else:
            at, level = end - 30.0, float(values.sum()) / values.size
        # memory only: a busy stage's CPU saturates near 100 % by design (guarded by the minimum
        # rise and linearity tests), and de-seasonalised saturation read as over the limit
        offset = self._seasonal(end, level) if self.kind == "memory" else 0.0
        self.raw.append(level)
        level -= offset
        limit -= offset
        self.series.append([at, level])
        blk, idx = self.blk, float(end // BLOCK_S)
        if idx != blk[3]:
            if blk[2] > 0:
                self.blocks.append([blk[0] / blk[2], blk[1] / blk[2]])
            blk[0], blk[1], blk[2], blk[3] = 0.0, 0.0, 0.0, idx
        blk[0] += at
        blk[1] += level
        blk[2] += 1.0
        if len(self.series) < 10 or int(end // 60) % 2:
            return None  # every other minute: a minute of lead time is not worth the cost
        short_ok, long_ok = gate(
            self.series, self.blocks, self.wins, self.th, self.kind == "cpu", limit, level
        )
        if not (short_ok or long_ok):
            return None
        return self._evaluate(end, limit, short_ok, long_ok, offset)

    def _seasonal(self, end: float, level: float) -> float:
        """The daily pattern's offset at `end` (0 until seasonality is detected), after
        feeding this minute's level to the seasonal baseline (delayed). Alarmed minutes are
        learnt too: skipping them would leave the phase of a daily rise that alarmed on its
        first day unlearnt, so it would alarm every day; a leak does not repeat at its phase,
        and the median of `K_DAYS` days outvotes one day's."""
        base = self.season
        preds = base.predictions(end)
        self.closed += 1
        self.pending.append([end, level, *preds])
        while self.pending and self.pending[0][0] <= end - _SEASON_DELAY_S:
            m_end, v, *made = self.pending.popleft()
            base.learn(m_end, v, made)
        due = (self.closed + self.slot) % _SEASON_REFRESH == 0
        if due and len(base.long) >= self.th.deg_warmup_min:
            base.refresh()
        if base.choice != 2 or preds[2] is None or preds[0] is None:
            return 0.0
        return preds[2] - preds[0]

    def _raw_rising(self, offset: float) -> bool:
        """Under a seasonal correction the short window must also rise before it: where the
        daily shape bends (a plateau ending), the interpolated offset leads the level by minutes,
        and near a limit that bump alone read as a trend. A leak rises in both."""
        if offset == 0.0 or len(self.raw) < 10:
            return True
        x = np.fromiter(self.raw, float)
        k = x.size // 3
        return float(np.median(x[-k:])) > float(np.median(x[:k]))

    def _evaluate(
        self, end: float, limit: float, short_ok: bool, long_ok: bool, offset: float
    ) -> Alarm | None:
        th = self.th
        arr = np.asarray(self.series, dtype=float)
        t, x = arr[:, 0], arr[:, 1]
        short = time_to_limit(t, x, limit, end, th.exh_alpha) if short_ok else None
        if short is not None:
            half = t.size // 2
            recent = time_to_limit(t[half:], x[half:], limit, end, th.exh_alpha)
            if recent is not None and recent.slope_lo > short.slope:
                # the trend steepened inside the window (a leak that started recently): the
                # recent half is what will reach the limit, and the full window would overstate
                # the time
                short, t, x = recent, t[half:], x[half:]
        span = t[-1] - t[0]
        # CPU also needs a real rise: a busy stage sits near 100 % by design (saturation)
        min_rise = th.exh_cpu_min_rise if self.kind == "cpu" else 0.0
        noisy = 1e-9 * limit
        est = None
        if short is not None:
            rise = short.slope * span
            if (
                short.slope_lo > 0
                and self._raw_rising(offset)
                and short.tte_lo_s < th.exh_horizon_s
                and rise > th.exh_min_ratio * max(short.noise, noisy)
                and rise > min_rise
            ):
                est = short
        fit = (
            long_fit(self.blocks, self.wins, th, end, limit, noisy)
            if long_ok or est is not None
            else None
        )
        if fit is not None:
            lest, lspan = fit
            if lest.tte_lo_s < th.exh_horizon_s and lest.slope * lspan > min_rise:
                est = lest  # the long linear fit has the better slope, hence the better TTE
            elif est is not None and (
                est.slope_lo <= _STEEPER * lest.slope or not is_linear(t, x, est, th.exh_lin_tol)
            ):
                # the short window only saw noise or a load step around the long trend (its
                # interval is too narrow: 3-minute floors overlap, so its points are not
                # independent); a new, faster leak is both much steeper and linear
                est = None
        elif est is not None and self.kind == "cpu" and not is_linear(t, x, est, th.exh_lin_tol):
            est = None  # a CPU step (a flash crowd) is saturation, not a trend to a limit
        if est is None:
            return None
        held = end < self.hold_until
        self.hold_until = end + th.holdoff_s
        if held:
            return None
        ref_n = min(len(self.blocks), _REF_MINUTES * 60 // int(BLOCK_S))
        ref = float(np.median([b[1] for b in list(self.blocks)[-ref_n:]])) if ref_n else est.level
        onset = max(end - _REF_MINUTES * 60.0, end - max(0.0, est.level - ref) / est.slope)
        unit = "MB" if self.kind == "memory" else "%"
        explanation = (
            f"{self.name}: {self.kind} at {est.level + offset:.0f} {unit} rising "
            f"{est.slope * 60:.1f} {unit}/min; limit {limit + offset:.0f} {unit} in "
            f"{est.tte_s / 60:.0f} min (pessimistic {est.tte_lo_s / 60:.0f} min)"
        )
        return exhaustion_alarm(
            self.name,
            est,
            min(onset, end),
            end,
            est.level + offset,
            limit + offset,
            self.kind == "cpu",
            explanation,
        )
