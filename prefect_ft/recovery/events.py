"""Prefect events of a recovery run (DESIGN §6): `prefect-ft.recovery.<kind>`.

| event | when |
|---|---|
| `prefect-ft.recovery.started` | an attempt begins (payload: strategy, phase, attempt) |
| `prefect-ft.recovery.succeeded` | validation passed; the breaker moved to HALF_OPEN |
| `prefect-ft.recovery.failed` | an attempt failed (action, validation, unreachable, unknown component) |
| `prefect-ft.recovery.escalated` | the next attempt moves to a later phase; `to_phase: operator` is the operator alert |

The resource is `prefect-ft.component.<name>` with labels `prefect-ft.component` and
`prefect-ft.phase` (so an automation can match the operator alert on `prefect-ft.phase:
operator`); the breaker is a related resource. Every payload carries `component`,
`recovery_id` and a one-line `reason`. Emission is best effort: an event never fails a recovery.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect_ft.tasks.events import breaker_resource_id, component_resource_id

__all__ = ["KINDS", "emit_recovery"]

KINDS = ("started", "succeeded", "failed", "escalated")
log = logging.getLogger("prefect_ft.recovery.events")


def emit_recovery(
    kind: str, component: str, recovery_id: str, phase: str, payload: dict[str, Any]
) -> str | None:
    """Emit `prefect-ft.recovery.<kind>`; returns the event name, or None when it could not go out."""
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)} (got {kind!r})")
    name = f"prefect-ft.recovery.{kind}"
    try:
        from prefect.events import emit_event

        emit_event(
            name,
            resource={
                "prefect.resource.id": component_resource_id(component),
                "prefect.resource.name": component,
                "prefect-ft.component": component,
                "prefect-ft.phase": phase,
            },
            related=[
                {
                    "prefect.resource.id": breaker_resource_id(component),
                    "prefect.resource.role": "breaker",
                    "prefect.resource.name": component,
                },
            ],
            payload={**payload, "component": component, "recovery_id": recovery_id, "phase": phase},
        )
    except Exception:  # events are best effort: never fail the recovery that caused them
        log.debug("emitting %s failed", name, exc_info=True)
        return None
    return name
