"""The breaker state machine: CLOSED -> OPEN -> HALF_OPEN -> RECOVERY -> CLOSED, plus overlays.

Every function takes the current `BreakerRecord`, the config and `now`, and returns a new record
with the events it caused. When nothing changes the same record object comes back, so drivers
can skip a store write with an identity check.

Rules that are easy to get wrong (issue 8):
- A breaker trips only on a failure or a slow call: a success that is not slow never opens it,
  even when it is the call that brings the window up to `minimum_calls`.
- HALF_OPEN is bounded: a breaker that has been HALF_OPEN for `half_open_deadline(cfg)` =
  (half_open_calls + 1) x probe_ttl_seconds without enough successful probes reopens (with a
  longer open time) at the next admission, and no probe lease runs past that deadline. The
  bound gives every probe slot a full lease, plus one replacement for a crashed prober.
- A probe that outlives its lease still counts when it fails: the breaker reopens (the latest
  `half_open_calls` expired leases are remembered). Its late success counts only if its slot
  was not handed to another probe meanwhile.
- A Retry-After hint does not bypass the trip condition: it sets the open time of the trip
  that its failure causes, capped at `max_open_seconds`; a non-finite hint is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from prefect_ft.core.classify import Outcome
from prefect_ft.core.conditions import TripStats
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.cooldown import decayed_trips, open_duration
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.ramp import recovery_fraction
from prefect_ft.core.states import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    RECOVERY,
    BreakerRecord,
    OverlayName,
)
from prefect_ft.core.windows import WindowCounts

__all__ = [
    "Admission",
    "Decision",
    "Transition",
    "admit",
    "evaluate",
    "half_open_deadline",
    "mark_recovered",
    "mark_recovery_failed",
    "on_outcome",
    "ramp_seconds",
    "recovery_blocked",
    "seconds_until_admission",
    "set_overlay",
    "trip",
]

Decision = Literal["admit", "probe", "ramp", "reject"]
_NO_EVENTS: tuple[BreakerEvent, ...] = ()
_EMPTY_COUNTS = WindowCounts()


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


def _open(
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


def _close(rec: BreakerRecord, now: float, reason: str) -> Transition:
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


def _live_probes(rec: BreakerRecord, now: float) -> tuple[tuple[str, float], ...]:
    return tuple(p for p in rec.probes if p[1] > now)


def half_open_deadline(cfg: BreakerConfig) -> float:
    """Longest time a breaker stays HALF_OPEN: (half_open_calls + 1) x probe_ttl_seconds."""
    return (cfg.half_open_calls + 1) * cfg.probe_ttl_seconds


def _lease(cfg: BreakerConfig, half_opened_at: float, now: float, holder: str) -> tuple[str, float]:
    # no lease outlives HALF_OPEN's deadline, so the next admission after it always decides
    return (holder, min(now + cfg.probe_ttl_seconds, half_opened_at + half_open_deadline(cfg)))


def admit(
    rec: BreakerRecord, cfg: BreakerConfig, now: float, holder: str, *, u: float = 0.5
) -> Admission:
    """Decide whether a call may run now; `holder` names the caller's probe lease if it gets one.

    `u` is a uniform number in [0, 1) for the open-time jitter of a HALF_OPEN that ran out of
    time (see the module docstring).
    """
    overlay = rec.overlay
    if overlay == "FORCED_OPEN":
        return Admission("reject", rec, retry_after=None)
    if overlay is not None:  # DISABLED and METRICS_ONLY always let calls through
        return Admission("admit", rec)
    state = rec.state
    if state == CLOSED:
        return Admission("admit", rec)
    if state == OPEN:
        if now < rec.open_until:
            return Admission("reject", rec, retry_after=rec.open_until - now)
        # open_until becomes the moment HALF_OPEN began: the open period really ended now,
        # and HALF_OPEN's deadline counts from here
        lease = (_lease(cfg, now, now, holder),)
        new = replace(rec, state=HALF_OPEN, open_until=now, probes=lease, probe_successes=0)
        event = BreakerEvent("half-opened", OPEN, HALF_OPEN, now, "open time elapsed")
        return Admission("probe", new, (event,))
    if state == HALF_OPEN:
        bound = half_open_deadline(cfg)
        if now >= rec.open_until + bound:
            reason = f"no probe answered enough within {bound:g} s of half-opening"
            t = _open(rec, cfg, now, u, reason, None)
            return Admission("reject", t.record, t.events, retry_after=t.record.open_until - now)
        live = _live_probes(rec, now)
        if len(live) + rec.probe_successes < cfg.half_open_calls:
            # the latest K expired leases stay listed until HALF_OPEN ends, so a late probe is
            # still known; older ones go, so the shared record stays small (at most 2K leases)
            expired = tuple(p for p in rec.probes if p[1] <= now)[-cfg.half_open_calls :]
            lease = _lease(cfg, rec.open_until, now, holder)
            return Admission("probe", replace(rec, probes=(*expired, *live, lease)))
        wait = min((p[1] for p in live), default=now) - now
        return Admission("reject", rec, retry_after=max(wait, 0.0))
    # RECOVERY
    elapsed, window = now - rec.recovery_started_at, ramp_seconds(rec, cfg)
    if elapsed >= window:
        t = _close(rec, now, f"recovery ramp of {window:g} s completed")
        return Admission("admit", t.record, t.events)
    fraction = recovery_fraction(
        elapsed, window, cfg.recovery_min_fraction, cfg.recovery_aggression
    )
    return Admission("ramp", rec, fraction=fraction)


def seconds_until_admission(rec: BreakerRecord, cfg: BreakerConfig, now: float) -> float | None:
    """How long until `admit` could let a call through: 0 = now, None = not until an operator acts.

    RECOVERY counts as admitting (its ramp lets a share through); HALF_OPEN admits when a probe
    slot is free, else when the earliest lease expires.
    """
    if rec.overlay == "FORCED_OPEN":
        return None
    if rec.overlay is not None or rec.state in (CLOSED, RECOVERY):
        return 0.0
    if rec.state == OPEN:
        return max(0.0, rec.open_until - now)
    live = _live_probes(rec, now)
    if len(live) + rec.probe_successes < cfg.half_open_calls:
        return 0.0
    return max(0.0, min((p[1] for p in live), default=now) - now)  # leases end by the deadline


def evaluate(
    rec: BreakerRecord,
    cfg: BreakerConfig,
    now: float,
    counts: WindowCounts,
    u: float,
    retry_after: float | None = None,
) -> Transition:
    """Trip a CLOSED breaker if its conditions hold for `counts` (the driver's window totals).

    `retry_after` (a hint from the failure being judged) sets the open time if it trips.
    """
    if rec.state != CLOSED or rec.overlay is not None:
        return Transition(rec)
    stats = TripStats(rec.consecutive_failures, counts.calls, counts.failures, counts.slow)
    if not cfg.trip.should_trip(stats):
        return Transition(rec)
    reason = cfg.trip.reason(stats)
    if retry_after is not None:
        reason = f"{reason}; the dependency asked to back off for {retry_after:g} s"
    return _open(rec, cfg, now, u, reason, retry_after)


def on_outcome(
    rec: BreakerRecord,
    cfg: BreakerConfig,
    now: float,
    outcome: Outcome,
    *,
    probe: str | None = None,
    ramp: bool = False,
    counts: WindowCounts = _EMPTY_COUNTS,
    u: float = 0.5,
    retry_after: float | None = None,
    slow: bool = False,
) -> Transition:
    """Account for one finished call.

    Args:
        outcome: `success`, `failure` or `ignored` (see `OutcomeClassifier`).
        probe: the lease holder if the call ran as a half-open probe.
        ramp: the call was admitted by the RECOVERY ramp.
        counts: the driver's window totals, this call included.
        u: a uniform number in [0, 1) for the open-time jitter.
        retry_after: an open time the failure asked for (Retry-After); it applies only if this
            outcome trips or reopens the breaker, capped at `max_open_seconds`.
        slow: the call took longer than the slow-call threshold (only a slow success may trip).
    """
    overlay = rec.overlay
    if overlay == "DISABLED" or overlay == "FORCED_OPEN":
        return Transition(rec)
    state = rec.state
    if state == CLOSED or overlay == "METRICS_ONLY":
        if outcome == "ignored" or state != CLOSED:
            return Transition(rec)
        if probe is not None or ramp:  # admitted as a probe or by the ramp, answered after
            return Transition(rec)  # the breaker closed: stale news about the dependency
        if outcome == "success":
            new = rec if rec.consecutive_failures == 0 else replace(rec, consecutive_failures=0)
        else:
            new = replace(rec, consecutive_failures=rec.consecutive_failures + 1)
        if overlay == "METRICS_ONLY":
            return Transition(new)
        if outcome == "success" and not slow:
            return Transition(new)  # only a failure or a slow call may trip (module docstring)
        return evaluate(new, cfg, now, counts, u, retry_after if outcome == "failure" else None)
    if state == HALF_OPEN:
        lease = next((p for p in rec.probes if p[0] == probe), None)
        if probe is None or lease is None:
            return Transition(rec)  # an overhanging call admitted before the trip: not a probe
        others = tuple(p for p in rec.probes if p[0] != probe)
        if outcome == "ignored":  # frees the slot without using it (Polly #311)
            return Transition(replace(rec, probes=others))
        if outcome == "failure":  # even after its lease expired: the dependency failed
            return _open(rec, cfg, now, u, "a half-open probe failed", retry_after)
        live = _live_probes(replace(rec, probes=others), now)
        if lease[1] <= now and len(live) + rec.probe_successes >= cfg.half_open_calls:
            return Transition(replace(rec, probes=others))  # its slot went to another probe
        successes = rec.probe_successes + 1
        if successes < cfg.half_open_calls:
            return Transition(replace(rec, probes=others, probe_successes=successes))
        window = ramp_seconds(rec, cfg)
        if window <= 0:
            return _close(rec, now, f"{successes} half-open probe(s) succeeded")
        new = replace(
            rec,
            state=RECOVERY,
            probes=(),
            probe_successes=0,
            recovery_started_at=now,
            recovery_calls=0,
            recovery_failures=0,
        )
        reason = f"{successes} probe(s) succeeded; ramping over {window:g} s"
        return Transition(new, (BreakerEvent("recovering", HALF_OPEN, RECOVERY, now, reason),))
    if state == RECOVERY and ramp and outcome != "ignored":
        calls = rec.recovery_calls + 1
        failures = rec.recovery_failures + (outcome == "failure")
        new = replace(rec, recovery_calls=calls, recovery_failures=failures)
        rate = 100.0 * failures / calls
        if calls >= cfg.recovery_minimum_calls and rate >= cfg.recovery_failure_rate:
            reason = (
                f"failure rate {rate:.1f}% during recovery (threshold {cfg.recovery_failure_rate}%)"
            )
            return _open(new, cfg, now, u, reason, retry_after)
        return Transition(new)
    return Transition(rec)  # OPEN, or a late outcome from before a transition


_OVERLAY_EVENTS = {
    "FORCED_OPEN": "forced-open",
    "DISABLED": "disabled",
    "METRICS_ONLY": "metrics-only",
    None: "overlay-cleared",
}


def set_overlay(
    rec: BreakerRecord, overlay: OverlayName | None, now: float, *, reset: bool = False
) -> Transition:
    """Set or clear an operator overlay; `reset=True` also returns the breaker to CLOSED."""
    new = replace(rec, overlay=overlay)
    if reset:
        new = replace(BreakerRecord(), overlay=overlay, trips=0, closed_at=now)
    if new == rec:
        return Transition(rec)
    kind = "closed" if reset and overlay is None else _OVERLAY_EVENTS[overlay]
    reason = "operator reset" if reset else f"operator set {overlay or 'no overlay'}"
    event = BreakerEvent(kind, rec.effective_state, new.effective_state, now, reason)  # type: ignore[arg-type]
    return Transition(new, (event,))


def recovery_blocked(rec: BreakerRecord) -> str | None:
    """Why a recovery outcome may not move this breaker (None: it may).

    Only an OPEN breaker without an overlay moves: an operator's overlay (FORCED_OPEN above all)
    is never overridden by recovery, and a breaker that already left OPEN (its probes or an
    operator got there first) is left to its own machine.
    """
    if rec.overlay is not None:
        return f"the breaker is {rec.overlay} by an operator; recovery never overrides that"
    if rec.state != OPEN:
        return f"the breaker is {rec.state}, not OPEN; nothing to move"
    return None


def mark_recovered(
    rec: BreakerRecord,
    cfg: BreakerConfig,
    now: float,
    *,
    reason: str = "recovery validated the component",
) -> Transition:
    """Recovery validated the component: OPEN -> HALF_OPEN now, without waiting out the open time.

    The probes then decide as usual and the RECOVERY ramp follows (so one healthy check does not
    let the whole load back at once). A no-op (the same record) when `recovery_blocked`.
    `reason` names the evidence (a recovery, or an active health check: `core.probe`).
    """
    if recovery_blocked(rec) is not None:
        return Transition(rec)
    # open_until is when HALF_OPEN began, as in `admit`: its deadline counts from here
    new = replace(rec, state=HALF_OPEN, open_until=now, probes=(), probe_successes=0)
    event = BreakerEvent("half-opened", OPEN, HALF_OPEN, now, reason)
    return Transition(new, (event,))


def trip(rec: BreakerRecord, cfg: BreakerConfig, now: float, u: float, reason: str) -> Transition:
    """Open a CLOSED breaker now, for `reason` (hard-down evidence: `core.probe`); else a no-op."""
    if rec.state != CLOSED or rec.overlay is not None:
        return Transition(rec)
    return _open(rec, cfg, now, u, reason, None)


def mark_recovery_failed(
    rec: BreakerRecord, cfg: BreakerConfig, now: float, open_seconds: float
) -> Transition:
    """Recovery failed: stay OPEN until `now + open_seconds` (the recovery's longer backoff).

    No breaker event: the state does not change, and a second `opened` would start the recover
    automation again; the recovery flow emits `prefect-ft.recovery.failed` itself. A no-op
    when `recovery_blocked`.

    Raises:
        ValueError: `open_seconds` is not a finite number > 0.
    """
    if not (isinstance(open_seconds, int | float) and 0 < open_seconds < float("inf")):
        raise ValueError(f"open_seconds must be a finite number > 0 (got {open_seconds!r})")
    if recovery_blocked(rec) is not None:
        return Transition(rec)
    return Transition(replace(rec, open_until=now + float(open_seconds)))
