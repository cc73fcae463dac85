"""Cascade tracker: groups burst episodes of related components and reports root and order.

Episodes are the per-component burst alarms (research/detection.md section 2.5). Bursts close in
time on components linked by the dependency graph form a group; the graph's precedence gives the
root and the order (the lag of the failures breaks ties between branches, `cascade.py`).

A downstream stage that fails because of its upstream often never raises a burst alarm of its
own (a sink with few tasks, a low propagation probability): the burst detector's budget is set
for unconditional monitoring. Once an upstream burst alarm exists, each graph descendant is
tested *conditionally*: its failures since the root's onset against its own trailing baseline,
with the exact conditional test for the ratio of two Poisson rates (Przyborowski & Wilenski
1940; Lehmann & Romano, Testing Statistical Hypotheses, 4.5): under equal rates, the k recent
failures among the k + n recent-plus-baseline ones are Binomial(k + n, T / (T + B)). The test
only runs while an upstream burst alarm is open (rare), so even a few looks at a small alpha add
almost nothing to the false-alarm rate, which stays dominated by the burst detector's
(coincidences of independent episodes: r_A * r_B * window, about 1e-6 per hour).

Direction: onset estimates of saturated stages are too noisy to order a chain (their spread is
about +-100 s against true lags of 1-30 s), so a hop is rejected only when the child's burst
clearly started first (more than `cascade_hop_tolerance_s` before its parent's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import FAILURE_TYPES, FailureType, Pattern, Severity
from prefect_ft.detection.alarms import Alarm as _Alarm
from prefect_ft.detection.cascade import ancestors, order_cascade
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["CascadeTracker", "cascade_severity", "excess_failures_p"]


def cascade_severity(n_components: int) -> Severity:
    """2 components MEDIUM, 3 HIGH, 4 or more CRITICAL."""
    if n_components >= 4:
        return Severity.CRITICAL
    if n_components == 3:
        return Severity.HIGH
    return Severity.MEDIUM if n_components == 2 else Severity.LOW


def excess_failures_p(
    times: np.ndarray, start: float, end: float, baseline_s: float, gap_s: float
) -> tuple[float, int]:
    """One-sided p-value that failures in `[start, end)` exceed the trailing baseline rate.

    Exact conditional test for two Poisson rates (Przyborowski & Wilenski 1940): with k failures
    in the test window of length T and n in the baseline `[start - gap - B, start - gap)` of
    length B, k | k + n ~ Binomial(k + n, T / (T + B)) under equal rates.

    Returns:
        `(p_value, k)`.
    """
    t = np.asarray(times, dtype=float)
    span = end - start
    b_hi = start - gap_s
    b_lo = b_hi - baseline_s
    if span <= 0 or t.size == 0:
        return 1.0, 0
    k = int(np.count_nonzero((t >= start) & (t < end)))
    n = int(np.count_nonzero((t >= b_lo) & (t < b_hi)))
    # an unobserved baseline start (history shorter than B) would understate the rate
    seen = min(baseline_s, max(0.0, b_hi - float(t.min())))
    if seen < 0.25 * baseline_s or k == 0:
        return 1.0, k
    # at least one baseline failure: a spotless baseline must not make a handful significant
    n = max(n, 1)
    return float(stats.binom.sf(k - 1, k + n, span / (span + seen))), k


class CascadeTracker:
    """Watches burst alarms across components."""

    __slots__ = ("bursts", "deadline", "hold_until", "last", "th")

    def __init__(self, th: Thresholds) -> None:
        self.th = th
        self.bursts: list[list[Any]] = []  # [component index, at, onset, failure type]
        self.deadline = NEVER
        self.hold_until = NEVER
        self.last: list[int] = []  # components involved at the previous minute

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("th",))

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)

    def on_burst(self, comp: int, alarm: _Alarm) -> None:
        """Remember a burst alarm (cascades are built from burst episodes)."""
        self.bursts.append([comp, alarm.at, alarm.onset, str(alarm.failure_type)])

    def _group(
        self, related: Mapping[int, set[int]], has_down: Mapping[int, bool]
    ) -> list[list[Any]]:
        # the largest set of bursts, close in time, on components linked by the graph; a lone
        # burst counts when its component has downstream stages to test conditionally
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
            if len(comps) == 1 and not has_down.get(seed[0], False):
                continue
            if len(comps) > len({g[0] for g in best}):
                best = group
        return best

    def _involved(
        self,
        group: list[list[Any]],
        end: float,
        failures: Mapping[int, np.ndarray],
        parents: Mapping[int, Sequence[int]],
        anc: Mapping[int, set[int]],
    ) -> tuple[list[int], dict[int, float]]:
        """Group components plus the descendants whose failures rose since the root's onset."""
        comps = list(dict.fromkeys(b[0] for b in sorted(group, key=lambda b: b[1])))
        onset = min(float(b[2]) for b in group)
        start = onset - self.th.cascade_lead_s
        inv = set(comps)
        pvals: dict[int, float] = {}
        # descendants of the group, upstream first; each must hang off an involved parent
        cands = sorted(
            (d for d in parents if d not in inv and anc[d] & inv), key=lambda d: (len(anc[d]), d)
        )
        empty = np.empty(0)
        for d in cands:
            if not any(p in inv for p in parents.get(d, ())):
                continue
            p, k = excess_failures_p(
                failures.get(d, empty),
                start,
                end,
                self.th.cascade_baseline_s,
                self.th.cascade_window_s,
            )
            if p < self.th.cascade_cond_alpha and k >= self.th.cascade_cond_min_failures:
                inv.add(d)
                comps.append(d)
                pvals[d] = p
        return comps, pvals

    def close_minute(
        self,
        end: float,
        failures: Mapping[int, np.ndarray],
        names: Sequence[str],
        parents: Mapping[int, Sequence[int]],
        related: Mapping[int, set[int]],
        codes: Mapping[int, Sequence[int]] | None = None,
    ) -> _Alarm | None:
        """Report a cascade once its group has settled.

        `codes` (failure-type codes aligned with `failures`) type the cascade by the root's
        failures since its onset, rather than by the few failures its burst alarm saw.
        """
        self.bursts = [b for b in self.bursts if b[1] >= end - 2 * self.th.cascade_window_s]
        anc = {c: ancestors(c, parents) for c in parents}
        has_down = {c: any(c in anc[d] for d in parents) for c in parents}
        group = self._group(related, has_down)
        if not group:
            self.deadline = NEVER
            self.last = []
            return None
        # wait for the last burst to settle, and give stages far downstream time to be reached:
        # while the root fails most tasks only a trickle of flows gets through to them
        self.deadline = max(
            max(b[1] for b in group) + self.th.cascade_settle_s,
            min(b[1] for b in group) + self.th.cascade_min_wait_s,
        )
        if end < self.deadline:
            self.last = []
            return None
        comps, pvals = self._involved(group, end, failures, parents, anc)
        # report once the involved set held for a minute (a slow sink may still be rising)
        stable = sorted(comps) == sorted(self.last)
        self.last = list(comps)
        if len(comps) < 2 or not stable:
            return None
        self.bursts = [b for b in self.bursts if b not in group]
        self.deadline = NEVER
        self.last = []
        if end < self.hold_until:
            return None
        by_comp = {b[0]: b for b in group}
        onsets = {c: float(b[2]) for c, b in by_comp.items()}
        start = min(onsets.values()) - 600.0
        result = order_cascade(
            comps,
            failures,
            parents,
            start,
            end,
            self.th.cascade_max_lag_s,
            onsets,
            self.th.cascade_hop_tolerance_s,
            {c: float(b[1]) for c, b in by_comp.items()},
        )
        if not result.consistent:
            return None
        self.hold_until = end + self.th.holdoff_s
        root = by_comp[result.order[0]]
        ftype = FailureType(root[3])
        if codes is not None and result.order[0] in codes:
            t = failures.get(result.order[0], np.empty(0))
            mine = np.asarray(codes[result.order[0]], dtype=np.int64)[-t.size :][t >= root[2]]
            mine = mine[(mine >= 0) & (mine < len(FAILURE_TYPES))]
            if mine.size:
                ftype = FAILURE_TYPES[int(np.bincount(mine).argmax())]
        ordered = tuple(names[c] for c in result.order)
        lags = ", ".join(
            f"{names[c]} +{lag:.0f} s"
            + (f" (no burst alarm; excess p={pvals[c]:.1e})" if c in pvals else "")
            for c, lag in zip(result.order[1:], result.lags_s[1:], strict=True)
        )
        return _Alarm(
            pattern=Pattern.CASCADE,
            components=ordered,
            onset=float(root[2]),
            at=end,
            severity=cascade_severity(len(ordered)),
            failure_type=ftype,
            score=float(len(ordered)),
            evidence=tuple(
                (f"lag_s_{names[c]}", lag)
                for c, lag in zip(result.order, result.lags_s, strict=True)
            ),
            explanation=f"cascade from {ordered[0]}: {lags}",
        )
