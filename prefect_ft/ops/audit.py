"""Operator actions as Prefect events: who (OS user, host) did what, to which breaker, and why.

| event | resource | payload |
|---|---|---|
| `prefect-ft.audit.<action>` (`force-open`, `reset`, `disable`, `metrics-only`, `clear`, `forget`) | `prefect-ft.breaker.<name>` | `by` {user, host, pid}, `reason`, `from_state`, `to_state` |
| `prefect-ft.emergency.shutdown` / `.cleared` | `prefect-ft.emergency` | see `prefect_ft.ops.emergency` |

An audit event is emitted even when the action changed nothing (forcing open a breaker that is
already FORCED_OPEN): the record is of what the operator asked for. A command line process exits
right after, so `emit_and_flush` waits for Prefect's events worker to send the event; a Prefect
API that cannot be reached costs the event, never the action (the caller reports it).
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["AUDIT_PREFIX", "audit", "emit_and_flush"]

AUDIT_PREFIX = "prefect-ft.audit."


def emit_and_flush(
    event: str,
    resource_id: str,
    payload: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Emit one event and wait (at most `timeout` s) until it is sent; False when events are off."""
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    sent = emit_event(
        event,
        resource={"prefect.resource.id": resource_id, **(labels or {})},
        payload=payload,
    )
    result = EventsWorker.drain_all(timeout=timeout, at_exit=False)
    if inspect.isawaitable(result):  # pragma: no cover - only inside a running event loop
        result.close()  # type: ignore[union-attr]
    return sent is not None


def audit(
    action: str,
    breaker: str,
    by: dict[str, Any],
    reason: str,
    from_state: str,
    to_state: str,
) -> bool:
    """Emit `prefect-ft.audit.<action>` for `breaker` (see the module docstring)."""
    payload = {
        "by": by,
        "reason": reason,
        "from_state": from_state,
        "to_state": to_state,
    }
    labels = {"prefect.resource.name": breaker, "prefect-ft.component": breaker}
    return emit_and_flush(
        f"{AUDIT_PREFIX}{action}", f"prefect-ft.breaker.{breaker}", payload, labels=labels
    )
