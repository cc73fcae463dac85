"""Readiness push: the component (or its supervisor) says "I am up", the breaker verifies it.

Polling alone cannot both send few requests to a component that is down and notice its return
at once: a check every 2.5 s over a 25 s outage means about 1.2 s, on average, before the
return is seen. A supervisor that restarts a component knows the moment its deep health check
passes, so it announces it (Kubernetes readiness, Envoy's health status pushed by the control
plane). The announcement is a field of the shared record, so every process sees it at its
next refresh:

- OPEN, with a health check: the announcement is recorded (`ready_at`) and the next check runs
  at once, whatever its backoff (`core.probe.probe_delay`). A pass half-opens as any pass does
  and marks the readiness verified (`ready_verified`): the RECOVERY ramp after it is then
  `ready_recovery_seconds` instead of `recovery_seconds` (two independent pieces of evidence,
  the component's own check and ours, and still a half-open work call before any load). A
  failed check drops the announcement (a later one may come).
- OPEN, without a health check: nothing can verify it but a work call, so it half-opens now
  (`mark_recovered`): the half-open probes decide as usual and the full ramp follows.
- Anything else (CLOSED, HALF_OPEN, RECOVERY, an operator's overlay): nothing changes. An
  announcement never overrides an overlay.

Pure: time is passed in; `CircuitBreaker.ready()` / `prefect_ft.announce_ready()` drive it.
"""

from __future__ import annotations

from dataclasses import replace

from prefect_ft.core import machine
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.states import OPEN, BreakerRecord

__all__ = ["announce", "pending", "verified"]


def _current(rec: BreakerRecord) -> bool:
    return rec.ready_at is not None and rec.ready_at >= rec.opened_at


def pending(rec: BreakerRecord) -> bool:
    """An announcement of this open period waits for its confirming health check."""
    return rec.state == OPEN and rec.overlay is None and _current(rec) and not rec.ready_verified


def verified(rec: BreakerRecord) -> bool:
    """This open period ended on an announcement that a health check confirmed."""
    return _current(rec) and rec.ready_verified  # as `machine.ramp_seconds` reads it


def announce(rec: BreakerRecord, cfg: BreakerConfig | None, now: float) -> machine.Transition:
    """Apply a readiness announcement made at `now` (see the module docstring).

    `cfg` None: the policy is unknown here (an announcement written straight to the store);
    it is recorded for the breakers' own health checks to verify.
    """
    if rec.overlay is not None or rec.state != OPEN:
        return machine.Transition(rec)
    if cfg is not None and cfg.health_check is None:
        return machine.mark_recovered(rec, cfg, now, reason="the component announced it is ready")
    if pending(rec):
        return machine.Transition(rec)  # already waiting for its check
    return machine.Transition(replace(rec, ready_at=now, ready_verified=False))
