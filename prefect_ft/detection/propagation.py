"""Cascade tracker: groups burst episodes of related components and reports root and order.

Episode precedence along the component graph, confirmed by lagged cross-correlation of 1-s
failure counts (research/detection.md section 2.5; ordering maths in `cascade.py`). Chance
coincidences of independent false episodes are rare (r_A * r_B * window, about 1e-6 per hour at
the burst budget), so cascade false alarms follow from the burst detector's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import Alarm as _Alarm
from prefect_ft.detection.alarms import FailureType, Pattern, Severity
from prefect_ft.detection.cascade import order_cascade
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["CascadeTracker", "cascade_severity"]


def cascade_severity(n_components: int) -> Severity:
    """2 components MEDIUM, 3 HIGH, 4 or more CRITICAL."""
    if n_components >= 4:
        return Severity.CRITICAL
    if n_components == 3:
        return Severity.HIGH
    return Severity.MEDIUM if n_components == 2 else Severity.LOW


class CascadeTracker:
    """Watches burst alarms across components."""

    __slots__ = ("bursts", "deadline", "hold_until", "th")

    def __init__(self, th: Thresholds) -> None:
        self.th = th
        self.bursts: list[list[Any]] = []  # [component index, at, onset, failure type]
        self.deadline = NEVER
        self.hold_until = NEVER

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("th",))

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)

    def on_burst(self, comp: int, alarm: _Alarm) -> None:
        """Remember a burst alarm (cascades are built from burst episodes)."""
        self.bursts.append([comp, alarm.at, alarm.onset, str(alarm.failure_type)])

    def _group(self, related: Mapping[int, set[int]]) -> list[list[Any]]:
        # the largest set of bursts, close in time, on components linked by the graph
        best: list[list[Any]] = []
        for seed in self.bursts:
            group = [seed]
            comps = {seed[0]}
            for other in self.bursts:
                if other is seed or other[0] in comps:
                    continue
                if (
                    abs(other[1] - seed[1]) <= self.th.cascade_window_s
                    and related[other[0]] & comps
                ):
                    group.append(other)
                    comps.add(other[0])
            if len(comps) > len({g[0] for g in best}):
                best = group
        return best if len({g[0] for g in best}) >= 2 else []

    def close_minute(
        self,
        end: float,
        failures: Mapping[int, np.ndarray],
        names: Sequence[str],
        parents: Mapping[int, Sequence[int]],
        related: Mapping[int, set[int]],
    ) -> _Alarm | None:
        """Report a cascade once its group has settled."""
        self.bursts = [b for b in self.bursts if b[1] >= end - 2 * self.th.cascade_window_s]
        group = self._group(related)
        if not group:
            self.deadline = NEVER
            return None
        self.deadline = max(b[1] for b in group) + self.th.cascade_settle_s
        if end < self.deadline:
            return None
        self.bursts = [b for b in self.bursts if b not in group]
        self.deadline = NEVER
        if end < self.hold_until:
            return None
        start = min(b[2] for b in group) - 600.0
        comps = [b[0] for b in sorted(group, key=lambda b: b[1])]
        result = order_cascade(comps, failures, parents, start, end, self.th.cascade_max_lag_s)
        if not result.consistent:
            return None
        self.hold_until = end + self.th.holdoff_s
        by_comp = {b[0]: b for b in group}
        root = by_comp[result.order[0]]
        ordered = tuple(names[c] for c in result.order)
        lags = ", ".join(
            f"{names[c]} +{lag:.0f} s"
            for c, lag in zip(result.order[1:], result.lags_s[1:], strict=True)
        )
        return _Alarm(
            pattern=Pattern.CASCADE,
            components=ordered,
            onset=float(root[2]),
            at=end,
            severity=cascade_severity(len(ordered)),
            failure_type=FailureType(root[3]),
            score=float(len(ordered)),
            evidence=tuple(
                (f"lag_s_{names[c]}", lag)
                for c, lag in zip(result.order, result.lags_s, strict=True)
            ),
            explanation=f"cascade from {ordered[0]}: {lags}",
        )
