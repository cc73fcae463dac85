"""The breaker's transitions and their result types, shared by `core.machine` (the call path)
and `core.moves` (operator and recovery moves).

`to_open` and `to_closed` build the new record of a trip and a close with its event; probe
leases are bounded by HALF_OPEN's deadline (see `core.machine`'s docstring for the rules).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.cooldown import decayed_trips, open_duration
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.states import CLOSED, HALF_OPEN, OPEN, RECOVERY, BreakerRecord

__all__ = [
    "Admission",
    "Decision",
    "Transition",
    "half_open_deadline",
    "live_probes",
    "probe_lease",
    "ramp_seconds",
    "to_closed",
    "to_open",
]

Decision = Literal["admit", "probe", "ramp", "reject"]
_NO_EVENTS: tuple[BreakerEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    """A new record and the events that led to it."""

    record: BreakerRecord
    events: tuple[BreakerEvent, ...] = _NO_EVENTS


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to "may this call run?".

    `decision` is `admit` (run, outcome counts normally), `probe` (run as a half-open probe
    holding a lease), `ramp` (RECOVERY: the driver admits `fraction` of calls with
    `ramp_admits`) or `reject` (raise `CircuitOpenError` with `retry_after`).
    """

    decision: Decision
    record: BreakerRecord
    events: tuple[BreakerEvent, ...] = _NO_EVENTS
    retry_after: float | None = None
    fraction: float = 1.0


def to_open(
    rec: BreakerRecord,
    cfg: BreakerConfig,
    now: float,
    u: float,
    reason: str,
    override: float | None,
) -> Transition:
    trips = decayed_trips(rec.trips, rec.closed_at, now, cfg.effective_decay_seconds) + 1
    if rec.state in (HALF_OPEN, RECOVERY):  # failed while trying to recover: no decay credit
        trips = rec.trips + 1
    seconds = open_duration(
        cfg.open_seconds,
        cfg.open_multiplier,
        cfg.open_cap_seconds,
        cfg.open_jitter,
        trips,
        u,
        override,
    )
    new = replace(
        rec,
        state=OPEN,
        consecutive_failures=0,
        trips=trips,
        opened_at=now,
        open_until=now + seconds,
        probes=(),
        probe_successes=0,
        recovery_calls=0,
        recovery_failures=0,
        ready_at=None,  # a readiness announced before this trip says nothing about this outage
        ready_verified=False,
    )
    event = BreakerEvent("opened", rec.effective_state, new.effective_state, now, reason, seconds)
    return Transition(new, (event,))


def to_closed(rec: BreakerRecord, now: float, reason: str) -> Transition:
    new = replace(
        rec,
        state=CLOSED,
        consecutive_failures=0,
        closed_at=now,
        probes=(),
        probe_successes=0,
        recovery_calls=0,
        recovery_failures=0,
    )
    return Transition(new, (BreakerEvent("closed", rec.effective_state, CLOSED, now, reason),))


def ramp_seconds(rec: BreakerRecord, cfg: BreakerConfig) -> float:
    """The RECOVERY ramp's length: `ready_recovery_seconds` when this open period ended on a
    verified readiness announcement (`core.readiness`), else `recovery_seconds`."""
    ready = rec.ready_verified and rec.ready_at is not None and rec.ready_at >= rec.opened_at
    if ready and cfg.ready_recovery_seconds is not None:
        return cfg.ready_recovery_seconds
    return cfg.recovery_seconds


def live_probes(rec: BreakerRecord, now: float) -> tuple[tuple[str, float], ...]:
    return tuple(p for p in rec.probes if p[1] > now)


def half_open_deadline(cfg: BreakerConfig) -> float:
    """Longest time a breaker stays HALF_OPEN: (half_open_calls + 1) x probe_ttl_seconds."""
    return (cfg.half_open_calls + 1) * cfg.probe_ttl_seconds


def probe_lease(
    cfg: BreakerConfig, half_opened_at: float, now: float, holder: str
) -> tuple[str, float]:
    # no lease outlives HALF_OPEN's deadline, so the next admission after it always decides
    return (holder, min(now + cfg.probe_ttl_seconds, half_opened_at + half_open_deadline(cfg)))
