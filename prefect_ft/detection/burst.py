"""Error bursts: a bank of Bernoulli CUSUMs on per-task failure flags, per component.

Page (1954) CUSUM of Bernoulli log-likelihood ratios (Reynolds and Stoumbos 1999). Per-task flags
normalise by traffic, so load swells do not alarm (research/detection.md section 2.1). p0 is a
trailing 6-h rate that skips minutes near open episodes. One CUSUM is optimal only for its own
p1 (Lorden 1971; Moustakides 1986), so two run side by side: a multi-chart CUSUM (Lorden 1971;
Han, Tsung, Hu and Wang 2007, "CUSUM and EWMA multi-charts for detecting a range of mean shifts",
Statistica Sinica 17), with p1 = min(0.9, m * p0) for m = `burst_m` (tuned to about 10x) and
m = `burst_m_fast` (about 30x), each with its own decision interval. The first chart to cross
alarms and every chart restarts. The fast chart's interval sits two nats higher: with a known p0
its ARL0 is then about twice the first chart's (its false alarms are 4-5 failures within a
handful of tasks), so the bank keeps within the false-alarm budget while 30x bursts alarm 5-20 %
sooner. Thresholds are set on fault-free generator data for ARL0 >= 500 h
(thresholds_v1.json). The exact binomial test on the episode is evidence only, never the trigger
(repeated looks would inflate false alarms). What an alarm says sits in `burst_alarm.py`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import FAILURE_TYPES, Alarm
from prefect_ft.detection.burst_alarm import burst_alarm, burst_severity, dominant_type
from prefect_ft.detection.cusum import bernoulli_llr
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["BurstTracker", "burst_severity"]

_BASELINE_DELAY_S = 600.0  # a minute joins the baseline only once no alarm has claimed it


class BurstTracker:
    """A bank of Bernoulli CUSUMs for one component, fed task by task in end-time order."""

    __slots__ = (
        "a",
        "b",
        "base",
        "by_type",
        "cur_k",
        "cur_n",
        "exclude_until",
        "held_k",
        "held_n",
        "hold_types",
        "hold_until",
        "k_ep",
        "n_ep",
        "name",
        "p0",
        "pending",
        "run_k",
        "run_min",
        "run_n",
        "s",
        "sum_k",
        "sum_n",
        "th",
        "types",
        "zero_at",
    )

    def __init__(
        self, name: str, th: Thresholds, run_min_tasks: int = 0, by_type: bool = False
    ) -> None:
        if run_min_tasks < 0:
            raise ValueError(f"run_min_tasks must be >= 0 (got {run_min_tasks})")
        self.name = name
        self.th = th
        # hold-off per failure type (False: one per component): after a burst of model errors,
        # a crash refusing connections is another episode, not more of the same burst
        self.by_type = by_type
        self.hold_types = [NEVER] * len(FAILURE_TYPES)
        # run-relative baseline (0: off): tasks learnt, failures among them, tasks of the open
        # episode (they join the baseline only if the episode ends without an alarm)
        self.run_min = run_min_tasks
        self.run_n = self.run_k = self.held_n = self.held_k = 0
        j = len(self._rises())
        # per chart: statistic, last zero (the onset estimate), tasks / failures / types since then
        self.s = [0.0] * j
        self.zero_at = [0.0] * j
        self.n_ep = [0] * j
        self.k_ep = [0] * j
        self.types = [[0] * len(FAILURE_TYPES) for _ in range(j)]
        self.hold_until = NEVER
        self.exclude_until = NEVER
        self.base: deque[list[float]] = deque()
        self.pending: deque[list[float]] = deque()
        self.sum_n = 0.0
        self.sum_k = 0.0
        self.cur_n = 0
        self.cur_k = 0
        self.p0 = 0.0  # 0 while learning
        self.a = [0.0] * j  # per-chart increment on a failure
        self.b = [0.0] * j  # per-chart increment on a success

    def state(self) -> dict[str, Any]:
        return dump_slots(self, skip=("name", "th", "run_min", "by_type"))

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)
        self._fit_charts()

    def _rises(self) -> list[float]:
        """The bank: p1 = min(0.9, m * p0) for each of these m."""
        return [self.th.burst_m] + ([self.th.burst_m_fast] if self.th.burst_m_fast > 0 else [])

    def _intervals(self) -> list[float]:
        return [self.th.burst_h, self.th.burst_h_fast][: len(self._rises())]

    def _fit_charts(self) -> None:
        """Match restored per-chart state to the current bank (a pre-bank state held scalars)."""
        j = len(self._rises())
        per_chart = ("s", "zero_at", "n_ep", "k_ep", "types")
        if not isinstance(self.s, list):
            for key in per_chart:
                setattr(self, key, [getattr(self, key)])
        self.s += [0.0] * (j - len(self.s))
        self.zero_at += [self.zero_at[0]] * (j - len(self.zero_at))
        self.n_ep += [0] * (j - len(self.n_ep))
        self.k_ep += [0] * (j - len(self.k_ep))
        self.types += [[0] * len(FAILURE_TYPES) for _ in range(j - len(self.types))]
        for key in per_chart:
            setattr(self, key, getattr(self, key)[:j])
        self.a, self.b = [0.0] * j, [0.0] * j
        if self.p0 > 0.0:
            for i, m in enumerate(self._rises()):
                self.a[i], self.b[i] = bernoulli_llr(self.p0, min(0.9, m * self.p0))

    def observe(self, ends: list[float], failed: list[bool], codes: list[int]) -> list[Alarm]:
        """Feed finished tasks (already in end-time order); return alarms they trigger."""
        if self.run_min <= 0:
            return self._observe(ends, failed, codes)
        alarms: list[Alarm] = []
        for t, y, code in zip(ends, failed, codes, strict=True):
            if self.p0 <= 0.0 and self.run_n >= self.run_min:
                self._set_p0((self.run_k + 0.5) / (self.run_n + 1.0))
            found = self._observe([t], [y], [code])
            alarms += found
            if found or t < self.exclude_until:
                self.held_n = self.held_k = 0  # an alarmed episode and its hold-off: not normal
                continue
            self.held_n += 1
            self.held_k += int(y)
            if not any(self.s):  # no episode open: what it held was normal behaviour
                self.run_n += self.held_n
                self.run_k += self.held_k
                self.held_n = self.held_k = 0
                if self.p0 > 0.0:
                    self._set_p0((self.run_k + 0.5) / (self.run_n + 1.0))
        return alarms

    def _set_p0(self, p0: float) -> None:
        p1s = [min(0.9, m * p0) for m in self._rises()]
        if all(p1 > p0 for p1 in p1s):
            self.p0 = p0
            for j, p1 in enumerate(p1s):
                self.a[j], self.b[j] = bernoulli_llr(p0, p1)

    def _observe(self, ends: list[float], failed: list[bool], codes: list[int]) -> list[Alarm]:
        k_new = sum(failed)
        self.cur_n += len(ends)
        self.cur_k += k_new
        if self.p0 <= 0.0:
            return []
        alarms: list[Alarm] = []
        s, a, b, hs = self.s, self.a, self.b, self._intervals()
        n_ep, k_ep, types, zero_at = self.n_ep, self.k_ep, self.types, self.zero_at
        charts = range(len(s))
        n_types = len(FAILURE_TYPES)
        # While every chart sits at 0, a success only moves the onset estimate (b < 0), so runs
        # of successes skip the per-chart work; the result is the same as stepping each chart.
        can_idle = all(x < 0.0 for x in b)
        idle = can_idle and not any(s)
        idle_t: float | None = None
        hold_types = self.hold_types if self.by_type else None
        for t, y, code in zip(ends, failed, codes, strict=True):
            if y and hold_types is not None and 0 <= code < n_types and t < hold_types[code]:
                # a failure of a type inside its own hold-off belongs to the alarmed episode: it
                # must not build the next one, nor name it (a tie went to the lower code, whose
                # hold-off then swallowed another type's burst)
                continue
            if idle and not y:
                idle_t = t
                continue
            if idle_t is not None:
                for j in charts:
                    zero_at[j] = idle_t
                idle_t = None
            fired = -1
            for j in charts:
                if y:
                    v = s[j] + a[j]
                    k_ep[j] += 1
                    if 0 <= code < n_types:
                        types[j][code] += 1
                else:
                    v = s[j] + b[j]
                n_ep[j] += 1
                if v <= 0.0:
                    v = 0.0
                    zero_at[j] = t
                    n_ep[j] = k_ep[j] = 0
                    if any(types[j]):
                        types[j] = [0] * n_types
                elif v > hs[j] and fired < 0:
                    fired = j
                s[j] = v
            if fired >= 0:
                kind = dominant_type(types[fired])
                held = self.hold_types[kind] if self.by_type else self.hold_until
                if t >= held:
                    alarms.append(self._alarm(t, fired))
                    self.exclude_until = t + self.th.holdoff_s
                self.hold_until = t + self.th.holdoff_s
                self.hold_types[kind] = t + self.th.holdoff_s
                for j in charts:  # every chart restarts after an alarm
                    s[j] = 0.0
                    zero_at[j] = t
                    n_ep[j] = k_ep[j] = 0
                    types[j] = [0] * n_types
            idle = can_idle and not any(s)
        if idle_t is not None:
            for j in charts:
                zero_at[j] = idle_t
        return alarms

    def _alarm(self, t: float, j: int) -> Alarm:
        """The alarm of chart `j`, which crossed its interval at `t` (its episode is still open)."""
        # minutes since the onset must not teach the baseline that the burst is normal
        onset = self.zero_at[j]
        self.pending = deque(x for x in self.pending if x[0] <= onset)
        return burst_alarm(
            self.name,
            t,
            onset,
            self.n_ep[j],
            self.k_ep[j],
            self.p0,
            self.s[j],
            dominant_type(self.types[j]),
            self._intervals()[j],
            self._rises()[j],
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
        if self.run_min > 0:
            return  # p0 comes from the run's own tasks (`observe`)
        if self.sum_n >= self.th.burst_min_tasks:
            # Jeffreys-style half count keeps p0 > 0 when the window saw no failure
            self._set_p0((self.sum_k + 0.5) / (self.sum_n + 1.0))
        elif not self.base:
            self.p0 = 0.0

    @property
    def learning(self) -> bool:
        """True until the baseline holds enough tasks."""
        return self.p0 <= 0.0 or math.isnan(self.p0)
