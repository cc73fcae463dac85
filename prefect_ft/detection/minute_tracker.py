"""The per-minute tracker scaffolding the degradation and throughput detectors share.

Both judge one value per closed minute against a seasonal, robust `MinuteBaseline`:

- a minute joins the baseline `DELAY_S` later, with the predictions made for it at decision
  time, and only when it is outside an alarm's exclusion (an onset must not teach the baseline);
- the baseline's level, choice of predictor and scale are refreshed every `REFRESH_EVERY`
  minutes once `deg_warmup_min` minutes are known (a median of 1440 values is not free), each
  tracker on its own minute of the `REFRESH_EVERY` (`refresh_slot`), so they do not all
  refresh on the same minute;
- a one-sided `GaussianCusum` decides; after an alarm the same tracker stays silent for
  `holdoff_s` and the level is relearnt, so a lasting shift alarms once.

Subclasses say what the value is and how an alarm reads (`degradation.py`, `throughput.py`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.cusum import GaussianCusum
from prefect_ft.detection.minute_baseline import MinuteBaseline, refresh_slot
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["MinuteTracker"]

DELAY_S = 600.0  # a minute joins the baseline this much later
REFRESH_EVERY = 15  # minutes between baseline refreshes


class MinuteTracker:
    """Baseline, delayed learning, CUSUM and hold-off of one per-minute series."""

    __slots__ = (
        "base",
        "closed",
        "cusum",
        "exclude_until",
        "hold_until",
        "name",
        "pending",
        "scale",
        "slot",
        "th",
    )
    _CONFIG = ("name", "th", "base", "slot")

    def __init__(
        self, name: str, th: Thresholds, min_scale: float = 0.0, max_slope: float = 0.0
    ) -> None:
        self.name = name
        self.th = th
        self.base = MinuteBaseline(min_scale=min_scale, max_slope=max_slope)
        self.slot = refresh_slot(f"{type(self).__name__}:{name}", REFRESH_EVERY)
        self.pending: deque[list[float]] = deque()  # [end, value, *predictions]
        self.cusum = GaussianCusum(th.deg_k, th.deg_h)
        self.scale = 0.0  # 0 while learning
        self.closed = 0
        self.hold_until = NEVER
        self.exclude_until = NEVER

    def state(self) -> dict[str, Any]:
        return {**dump_slots(self, skip=self._CONFIG), "base": self.base.state()}

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, {k: v for k, v in data.items() if k != "base"})
        self.base.load(data["base"])

    def _advance(self, end: float, value: float | None, preds: list[float | None]) -> None:
        """Count the minute, queue its value (None: no value), teach the baseline the minutes
        that are old enough, and refresh it when due."""
        self.closed += 1
        if value is not None:
            self.pending.append([end, value, *preds])
            self.base.observe(value)
        while self.pending and self.pending[0][0] <= end - DELAY_S:
            m_end, v, *made = self.pending.popleft()
            if m_end > self.exclude_until:
                self.base.learn(m_end, v, made)
        due = (self.closed + self.slot) % REFRESH_EVERY == 0
        if due and len(self.base.long) >= self.th.deg_warmup_min:
            self.base.refresh()
            self._refreshed()

    def _refreshed(self) -> None:
        self.scale = self.base.scale

    def _fire(self, end: float, onset: float) -> bool:
        """A test fired at `end` for a change that began at `onset`: reset the CUSUM, never
        teach the baseline the minutes since the onset, and unless held off, open the hold-off
        and exclusion and relearn the level. True when the alarm is to be raised."""
        held = end < self.hold_until
        self.hold_until = end + self.th.holdoff_s
        self.cusum.reset(end)
        self.pending = deque(p for p in self.pending if p[0] <= onset)
        if held:
            return False
        self.exclude_until = self.hold_until
        # Relearn from here: a lasting shift (a deploy, a new model) is the new normal, and
        # judging it against the old baseline would re-alarm after every hold-off.
        self.pending.clear()
        self.base.relearn()
        self.scale = 0.0
        return True
