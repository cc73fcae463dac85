"""Moves made from outside the call path: operator overlays and resets, a recovery's outcome,
and a health check's trip. Each returns a `Transition` (the same record when nothing changes);
`prefect_ft.circuit.moves` writes them through the store.
"""

from __future__ import annotations

from dataclasses import replace

from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.states import CLOSED, HALF_OPEN, OPEN, BreakerRecord, OverlayName
from prefect_ft.core.transitions import Transition, to_open

__all__ = [
    "mark_recovered",
    "mark_recovery_failed",
    "recovery_blocked",
    "set_overlay",
    "trip",
]


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
    return to_open(rec, cfg, now, u, reason, None)


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
