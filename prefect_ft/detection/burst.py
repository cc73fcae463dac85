"""Error bursts: a Bernoulli CUSUM on per-task failure flags, per component.

Page (1954) CUSUM of Bernoulli log-likelihood ratios (Reynolds and Stoumbos 1999). Per-task flags
normalise by traffic, so load swells do not alarm (research/detection.md section 2.1). p0 is a
trailing 6-h rate that skips minutes near open episodes; p1 = min(0.9, m * p0). h is set on
fault-free generator data for ARL0 >= 500 h (thresholds_v1.json). The exact binomial test on the
episode is evidence only, never the trigger (repeated looks would inflate false alarms).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from scipy import stats

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import FAILURE_TYPES, Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.cusum import bernoulli_llr
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["BurstTracker", "burst_severity"]

_BASELINE_DELAY_S = 600.0  # a minute joins the baseline only once no alarm has claimed it


def burst_severity(ratio: float, rate: float) -> Severity:
    """Severity from the failure-rate ratio over baseline (the geometric midpoints of 3/5/10/30x)."""
    if ratio >= 17.0 or rate >= 0.5:
        return Severity.CRITICAL
    if ratio >= 7.0:
        return Severity.HIGH
    if ratio >= 3.9:
        return Severity.MEDIUM
    return Severity.LOW


class BurstTracker:
    """Bernoulli CUSUM for one component, fed task by task in end-time order."""

    __slots__ = (
        "a",
        "b",
        "base",
        "cur_k",
        "cur_n",
        "exclude_until",
        "hold_until",
        "k_ep",
        "n_ep",
        "name",
        "p0",
        "pending",
        "s",
        "sum_k",
        "sum_n",
        "th",
        "types",
        "zero_at",
    )

    def __init__(self, name: str, th: Thresholds) -> None:
        self.name = name
        self.th = th
        self.s = 0.0
        self.zero_at = 0.0
        self.n_ep = 0
        self.k_ep = 0
        self.types = [0] * len(FAILURE_TYPES)
        self.hold_until = NEVER
        self.exclude_until = NEVER
        self.base: deque[list[float]] = deque()
        self.pending: deque[list[float]] = deque()
        self.sum_n = 0.0
        self.sum_k = 0.0
        self.cur_n = 0
        self.cur_k = 0
        self.p0 = 0.0  # 0 while learning
        self.a = 0.0
        self.b = 0.0

    def state(self) -> dict[str, Any]:
        return dump_slots(self)

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)

    def observe(self, ends: list[float], failed: list[bool], codes: list[int]) -> list[Alarm]:
        """Feed finished tasks (already in end-time order); return alarms they trigger."""
        k_new = sum(failed)
        self.cur_n += len(ends)
        self.cur_k += k_new
        if self.p0 <= 0.0:
            return []
        alarms: list[Alarm] = []
        s, a, b, h = self.s, self.a, self.b, self.th.burst_h
        for t, y, code in zip(ends, failed, codes, strict=True):
            if y:
                s += a
                self.k_ep += 1
                if 0 <= code < len(self.types):
                    self.types[code] += 1
            else:
                s += b
            self.n_ep += 1
            if s <= 0.0:
                s = 0.0
                self.zero_at = t
                if self.n_ep:
                    self.n_ep = self.k_ep = 0
                    if any(self.types):
                        self.types = [0] * len(FAILURE_TYPES)
            elif s > h:
                if t >= self.hold_until:
                    alarms.append(self._alarm(t, s))
                    self.exclude_until = t + self.th.holdoff_s
                self.hold_until = t + self.th.holdoff_s
                s = 0.0
                self.zero_at = t
                self.n_ep = self.k_ep = 0
                self.types = [0] * len(FAILURE_TYPES)
        self.s = s
        return alarms

    def _alarm(self, t: float, s: float) -> Alarm:
        n, k, p0 = self.n_ep, self.k_ep, self.p0
        rate = k / n if n else 0.0
        ratio = rate / p0
        best = int(np.argmax(self.types)) if any(self.types) else FailureType.PROCESSING_ERROR.code
        ftype = FAILURE_TYPES[best]
        pval = float(stats.binomtest(k, n, p0, alternative="greater").pvalue) if n else 1.0
        # minutes since the onset must not teach the baseline that the burst is normal
        onset = self.zero_at
        self.pending = deque(x for x in self.pending if x[0] <= onset)
        return Alarm(
            pattern=Pattern.BURST,
            components=(self.name,),
            onset=onset,
            at=t,
            severity=burst_severity(ratio, rate),
            failure_type=ftype,
            score=s,
            evidence=(
                ("failed", float(k)),
                ("tasks", float(n)),
                ("rate", rate),
                ("baseline_rate", p0),
                ("ratio", ratio),
                ("p_value", pval),
                ("h", self.th.burst_h),
            ),
            explanation=(
                f"{self.name}: {k} of {n} tasks failed since onset ({rate:.1%}, "
                f"{ratio:.1f}x the baseline {p0:.2%}), mostly {ftype}"
            ),
        )

    def close_minute(self, end: float) -> None:
        """Close the minute ending at `end`: move old minutes into the baseline, refresh p0."""
        self.pending.append([end, float(self.cur_n), float(self.cur_k)])
        self.cur_n = self.cur_k = 0
        while self.pending and self.pending[0][0] <= end - _BASELINE_DELAY_S:
            m_end, n, k = self.pending.popleft()
            if m_end <= self.exclude_until:
                continue  # inside an episode's hold-off: not normal behaviour
            self.base.append([m_end, n, k])
            self.sum_n += n
            self.sum_k += k
        while self.base and self.base[0][0] <= end - self.th.burst_baseline_s:
            _, n, k = self.base.popleft()
            self.sum_n -= n
            self.sum_k -= k
        if self.sum_n >= self.th.burst_min_tasks:
            # Jeffreys-style half count keeps p0 > 0 when the window saw no failure
            p0 = (self.sum_k + 0.5) / (self.sum_n + 1.0)
            p1 = min(0.9, self.th.burst_m * p0)
            if p1 > p0:
                self.p0 = p0
                self.a, self.b = bernoulli_llr(p0, p1)
        elif not self.base:
            self.p0 = 0.0

    @property
    def learning(self) -> bool:
        """True until the baseline holds enough tasks."""
        return self.p0 <= 0.0 or math.isnan(self.p0)
