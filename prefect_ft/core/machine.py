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

Operator and recovery moves live in `core.moves`, the transitions both share in
`core.transitions`; their names are re-exported here, so `machine.<name>` reaches all of them.
"""

from __future__ import annotations

from dataclasses import replace

from prefect_ft.core.classify import Outcome
from prefect_ft.core.conditions import TripStats
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.moves import (
    mark_recovered,
    mark_recovery_failed,
    recovery_blocked,
    set_overlay,
    trip,
)
from prefect_ft.core.ramp import recovery_fraction
from prefect_ft.core.states import CLOSED, HALF_OPEN, OPEN, RECOVERY, BreakerRecord
from prefect_ft.core.transitions import (
    Admission,
    Decision,
    Transition,
    half_open_deadline,
    live_probes,
    probe_lease,
    ramp_seconds,
    to_closed,
    to_open,
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

_EMPTY_COUNTS = WindowCounts()


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
        lease = (probe_lease(cfg, now, now, holder),)
        new = replace(rec, state=HALF_OPEN, open_until=now, probes=lease, probe_successes=0)
        event = BreakerEvent("half-opened", OPEN, HALF_OPEN, now, "open time elapsed")
        return Admission("probe", new, (event,))
    if state == HALF_OPEN:
        bound = half_open_deadline(cfg)
        if now >= rec.open_until + bound:
            reason = f"no probe answered enough within {bound:g} s of half-opening"
            t = to_open(rec, cfg, now, u, reason, None)
            return Admission("reject", t.record, t.events, retry_after=t.record.open_until - now)
        live = live_probes(rec, now)
        if len(live) + rec.probe_successes < cfg.half_open_calls:
            # the latest K expired leases stay listed until HALF_OPEN ends, so a late probe is
            # still known; older ones go, so the shared record stays small (at most 2K leases)
            expired = tuple(p for p in rec.probes if p[1] <= now)[-cfg.half_open_calls :]
            lease = probe_lease(cfg, rec.open_until, now, holder)
            return Admission("probe", replace(rec, probes=(*expired, *live, lease)))
        wait = min((p[1] for p in live), default=now) - now
        return Admission("reject", rec, retry_after=max(wait, 0.0))
    # RECOVERY
    elapsed, window = now - rec.recovery_started_at, ramp_seconds(rec, cfg)
    if elapsed >= window:
        t = to_closed(rec, now, f"recovery ramp of {window:g} s completed")
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
    live = live_probes(rec, now)
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
    return to_open(rec, cfg, now, u, reason, retry_after)


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
            return to_open(rec, cfg, now, u, "a half-open probe failed", retry_after)
        live = live_probes(replace(rec, probes=others), now)
        if lease[1] <= now and len(live) + rec.probe_successes >= cfg.half_open_calls:
            return Transition(replace(rec, probes=others))  # its slot went to another probe
        successes = rec.probe_successes + 1
        if successes < cfg.half_open_calls:
            return Transition(replace(rec, probes=others, probe_successes=successes))
        window = ramp_seconds(rec, cfg)
        if window <= 0:
            return to_closed(rec, now, f"{successes} half-open probe(s) succeeded")
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
            return to_open(new, cfg, now, u, reason, retry_after)
        return Transition(new)
    return Transition(rec)  # OPEN, or a late outcome from before a transition
