"""Active health checking: when to run a component's health check, and what its answer does.

After Envoy, which combines passive outlier detection with active health checks: a host that
passes an active check is let back at once (`successful_active_health_check_uneject_host`), a
host that fails it stays out, and consecutive local-origin (connect) failures eject a host
early (`consecutive_local_origin_failure`). Resilience4j has the first half as
`automaticTransitionFromOpenToHalfOpenEnabled`, driven by a timer instead of a check.

- OPEN, the check passes -> HALF_OPEN now (the `mark_recovered` path): the half-open probes and
  the RECOVERY ramp then decide as usual, so one good answer does not let the whole load back,
  but throughput returns soon after the fault ends instead of after the open time.
- OPEN, the check fails -> stay OPEN until the next check has had time to answer
  (`open_until` is pushed to now + 2 x interval when it would end sooner: one interval to the
  next check, one more for a late wake-up or a slow check), so the open time does not run out
  into a half-open work call against a component the check has just found down. No event: the
  state is the same.
  If the checks stop (the prober's process died) the open time runs out as usual.
- CLOSED with `probe_confirm_failures` consecutive failures or more, the check fails -> OPEN now,
  before the trip condition's count is reached (a failed deep check is hard-down evidence).
- Anything else changes nothing: a pass while CLOSED says the failures were not the component
  being down (bad input, a partial error burst), so the trip condition decides alone.

Backoff: while OPEN the interval after the n-th failed check of an open period is
`probe_interval_seconds x probe_backoff ** (n - 1)`, capped at `probe_max_interval_seconds`
(`probe_interval`), so a long outage costs a few checks, not one per interval; a readiness
announcement (`core.readiness`) makes the next check due at once, whatever the backoff, and a
pass with one pending half-opens with the readiness verified.

One prober per breaker across processes: the checks of an open period are run by the process
that holds the breaker's prober lease (`take_lease`, written with compare-and-set next to the
record), so N processes with the breaker open send one process's checks, not N times as many.
The lease lasts two backed-off intervals and a second (`lease_ttl`): a holder that died or
stalls is replaced after that. Checks that verify a readiness announcement and confirming
checks while CLOSED do not wait for the lease (they answer this process's own evidence).

Pure: time is passed in; the driver (`prefect_ft.recovery.prober`) runs the checks.
"""

from __future__ import annotations

from dataclasses import replace

from prefect_ft.core import machine, readiness
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.states import CLOSED, OPEN, BreakerRecord

__all__ = [
    "confirm_wanted",
    "healthy_answer",
    "lease_ttl",
    "on_health",
    "probe_delay",
    "probe_interval",
    "take_lease",
]


def healthy_answer(answer: object) -> bool:
    """Whether a health check's return value says healthy (it returned without raising).

    False, or a mapping whose "healthy" is false (the control channel's `/health` answer), is
    unhealthy; anything else (None, True, a mapping with "healthy": true) is healthy.
    """
    if answer is False:
        return False
    if isinstance(answer, dict) and "healthy" in answer:
        return bool(answer["healthy"])
    return True


def probe_interval(cfg: BreakerConfig, checks: int) -> float | None:
    """The interval after `checks` failed checks of an open period (backed off, capped)."""
    base = cfg.probe_interval_seconds
    if base is None:
        return None
    cap = cfg.probe_max_interval_seconds
    cap = 16 * base if cap is None else cap
    # the exponent is bounded first: 100 ** 3600 would overflow a float
    return min(cap, base * cfg.probe_backoff ** min(max(checks - 1, 0), 64))


def probe_delay(
    rec: BreakerRecord, cfg: BreakerConfig, now: float, last_at: float | None, checks: int = 1
) -> float | None:
    """Seconds until the next check is due while OPEN (0 = now); None: no check to schedule.

    `checks`: the checks already run in this open period (the backoff's exponent).
    """
    if cfg.health_check is None or rec.overlay is not None or rec.state != OPEN:
        return None
    if readiness.pending(rec) and (last_at is None or last_at <= rec.ready_at):  # type: ignore[operator]
        return 0.0  # an announcement no check answered yet: verify it now
    interval = probe_interval(cfg, checks)
    if interval is None:
        return None
    if last_at is None or last_at < rec.opened_at:  # the first check of this open period
        return 0.0
    return max(0.0, last_at + interval - now)


def confirm_wanted(rec: BreakerRecord, cfg: BreakerConfig) -> bool:
    """A CLOSED breaker has failed often enough that a failing check should open it now."""
    n = cfg.probe_confirm_failures
    if n is None or cfg.health_check is None or rec.overlay is not None:
        return False
    return rec.state == CLOSED and rec.consecutive_failures >= n


def on_health(
    rec: BreakerRecord,
    cfg: BreakerConfig,
    now: float,
    healthy: bool,
    *,
    u: float = 0.5,
    checks: int = 1,
    started: float | None = None,
) -> machine.Transition:
    """Apply one health check's answer to the record (see the module docstring).

    `checks`: the checks run in this open period, this one included (for the backoff).
    `started`: when the check began (default `now`); a failed check drops only announcements
    made by then (one made while it ran is about a later moment: the next check answers it).
    """
    if rec.overlay is not None:  # an operator's overlay is never overridden
        return machine.Transition(rec)
    ready = readiness.pending(rec)
    if rec.state == OPEN and (cfg.probe_interval_seconds is not None or ready):
        if healthy and ready:
            t = machine.mark_recovered(rec, cfg, now, reason="readiness announced; health check passed")  # fmt: skip
            return machine.Transition(replace(t.record, ready_verified=True), t.events)
        if healthy:
            return machine.mark_recovered(rec, cfg, now, reason="active health check passed")
        began = now if started is None else started
        stale = ready and rec.ready_at <= began  # type: ignore[operator]
        new = replace(rec, ready_at=None) if stale else rec  # not confirmed: drop it
        interval = probe_interval(cfg, checks)
        hold = now + 2 * interval if interval is not None else 0.0
        if new.open_until < hold:
            new = replace(new, open_until=hold)
        return machine.Transition(new)
    if not healthy and confirm_wanted(rec, cfg):
        reason = f"{rec.consecutive_failures} consecutive failure(s) and the health check failed"
        return machine.trip(rec, cfg, now, u, reason)
    return machine.Transition(rec)


def lease_ttl(cfg: BreakerConfig, checks: int) -> float:
    """How long the prober lease lasts after a check: two intervals (one to the next check,
    one for a late wake-up) and a second for a slow check or store."""
    return 2 * (probe_interval(cfg, checks) or 0.0) + 1.0


def take_lease(
    lease: tuple[str, float] | None, me: str, now: float, ttl: float
) -> tuple[bool, tuple[str, float] | None]:
    """May `me` run the open period's next check? `(mine, lease to write)`.

    `lease` is the current `(holder, until)` or None; a live lease of another holder means no
    (nothing to write); otherwise `me` takes or renews it until `now + ttl`.
    """
    if lease is not None and lease[0] != me and lease[1] > now:
        return False, None
    return True, (me, now + ttl)
