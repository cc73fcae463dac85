"""Hung stages: runs in flight far longer than the stage's own durations, and nothing ending.

A stage that hangs (a deadlock, a call with no timeout to a dead server) ends no attempt: its
runs start and stay RUNNING. No duration reaches the degradation detector (a duration exists only
when a run ends), and a first stage's throughput reads as "nothing arrived" (its input is only
known from its own attempts). The stage's downstream then starves too, and the pipeline stops
silently. What does show is the work in flight: runs older than anything the stage normally
takes, while it ends nothing at all.

Two conditions, each judged against the stage's own learnt behaviour, must hold at a closed
minute:

- **overdue**: the oldest run in flight is older than `MARGIN` times the stage's long-run
  duration limit, the 0.99 quantile of its per-minute maximum durations over the last
  `LIMIT_MIN` minutes (block maxima, Gumbel 1958: with ~60 runs a minute that is about the
  0.9998 quantile of single durations, and one odd minute cannot move it);
- **silent**: since that run became overdue (and since the stage last ended any attempt, failed
  ones included), the stage would have ended at least `MIN_EXPECTED` attempts at its recent
  rate (the last `RATE_MIN` minutes, the silent ones left out), and ended none. Under Poisson
  ends, none of 10 expected has probability e^-10 = 4.5e-5.

The overdue run tells a hang from work that stopped arriving (then nothing is in flight, or only
young runs); the silence tells it from one long but normal run among others that keep ending.
A stage with a single slot cannot tell a long run from a stuck one until `MARGIN` x the limit:
a known limit of this rule (no synthetic stage has fewer than 4 slots).

The alarm names the stage, pattern `DEGRADATION` (the performance family: the stage is not
failing calls, it is not finishing them) and failure type `Timeout`: a hung call is a call past
any duration the stage shows, what a timeout would have reported had one been set (research
notes section 2.6, rule 1: Timeout when the duration reaches the timeout). Its onset is the
oldest stuck run's start. After an alarm the stage must end an attempt (and `holdoff_s` pass)
before it can alarm again, so one stall alarms once.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER, dump_slots, load_slots
from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["LIMIT_MIN", "MARGIN", "MIN_EXPECTED", "RATE_MIN", "HangTracker"]

LIMIT_MIN = 240  # minutes of per-minute maximum durations behind the limit
RATE_MIN = 60  # minutes behind the recent rate of ended attempts
MIN_EXPECTED = 10.0  # ends the silence must have missed: P(0 | Poisson 10) = 4.5e-5
MARGIN = 2.0  # overdue: older than twice the limit (a single-slot stage's long run)
WARM_MIN = 60  # minutes with ended attempts before the tracker judges
QUANTILE = 0.99  # of the per-minute maxima


class HangTracker:
    """Hung-stage detector for one component, fed one closed minute at a time."""

    __slots__ = ("alarmed", "counts", "hold_until", "last_end", "maxima", "name", "silent", "th")

    def __init__(self, name: str, th: Thresholds) -> None:
        self.name = name
        self.th = th
        self.maxima: deque[float] = deque(maxlen=LIMIT_MIN)  # minutes with ends only
        self.counts: deque[int] = deque(maxlen=RATE_MIN)  # ended attempts per minute
        self.silent = 0  # trailing minutes without an ended attempt
        self.last_end = NEVER  # the stage's last ended attempt
        self.hold_until = NEVER
        self.alarmed = False  # an alarm was raised and the stage has not ended an attempt since

    def state(self) -> dict[str, Any]:
        return dump_slots(self)

    def load(self, data: dict[str, Any]) -> None:
        load_slots(self, data)

    def limit(self) -> float:
        """The stage's duration limit (seconds): a high quantile of its per-minute maxima."""
        return float(np.quantile(np.fromiter(self.maxima, float), QUANTILE))

    def close_minute(
        self, end: float, ended: int, longest: float, last_end: float, oldest: float | None
    ) -> Alarm | None:
        """Close the minute ending at `end`.

        Args:
            end: end of the minute, epoch seconds.
            ended: attempts of this stage that ended in the minute (any outcome).
            longest: the longest duration among them (NaN when none or unknown).
            last_end: the latest end time among them (ignored when `ended` is 0).
            oldest: start of the oldest run in flight at `end` (None when none is).
        """
        if ended > 0:
            self.counts.append(ended)
            self.silent = 0
            self.last_end = max(self.last_end, last_end)
            self.alarmed = False
            if math.isfinite(longest) and longest > 0.0:
                self.maxima.append(longest)
        else:
            self.counts.append(0)
            self.silent += 1
        if oldest is None or self.alarmed or end < self.hold_until:
            return None
        if len(self.maxima) < WARM_MIN:
            return None
        active = len(self.counts) - min(self.silent, len(self.counts))
        if active <= 0:
            return None
        rate = sum(self.counts) / (60.0 * active)  # per second, before the silence
        quiet = end - max(self.last_end, oldest)
        if rate * quiet < MIN_EXPECTED:  # cheap first: most minutes end something
            return None
        limit = self.limit()
        age = end - oldest
        # silent since the oldest run became overdue and since the stage last ended anything
        silence = end - max(self.last_end, oldest + MARGIN * limit)
        expected = rate * silence
        if expected < MIN_EXPECTED:
            return None
        self.alarmed = True
        self.hold_until = end + self.th.holdoff_s
        return Alarm(
            pattern=Pattern.DEGRADATION,
            components=(self.name,),
            onset=oldest,
            at=end,
            severity=Severity.CRITICAL,
            failure_type=FailureType.TIMEOUT,
            score=float(expected),
            evidence=(
                ("oldest_in_flight_s", age),
                ("duration_limit_s", limit),
                ("silent_s", silence),
                ("expected_ends", expected),
                ("ends_per_min", 60.0 * rate),
            ),
            explanation=(
                f"{self.name}: a run in flight for {age:.0f} s (the stage's limit is "
                f"{limit:.3g} s) and no attempt ended for {silence:.0f} s, where "
                f"{expected:.0f} would have: the stage hangs"
            ),
        )
