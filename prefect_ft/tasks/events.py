"""Prefect events for breaker transitions, rejections and published states (DESIGN §6).

| event | when |
|---|---|
| `prefect-ft.breaker.<kind>` | a transition made in this process: `opened`, `half-opened`, `recovering`, `closed`, `forced-open`, `disabled` (and `metrics-only`, `overlay-cleared`) |
| `prefect-ft.breaker.rejected` | a call was refused (`payload.rejected_by` is `breaker` or `bulkhead`) |
| `prefect-ft.breaker.state` | a process started using a breaker: its current state, once per breaker and process |

Every event's resource is `prefect-ft.breaker.<name>` (labels `prefect-ft.state` and
`prefect-ft.component`); the breaker and the component `prefect-ft.component.<name>` are also
related resources (roles `breaker` and `component`), so a trigger can match either. The payload
holds `from_state`, `to_state`, `reason`, `open_seconds` and `retry_after`.

Transitions observed from another process (`BreakerEvent.remote`) are not emitted: exactly one
process wins a transition in the store, and only that one announces it. `emit_event` queues to
Prefect's background events worker, so no call waits on the network; nothing here ever raises
into a task.

This module does not decide transitions (`prefect_ft.core`) or export metrics.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from prefect_ft.breaker import CircuitBreaker, add_global_listener
from prefect_ft.core.events import BreakerEvent

__all__ = [
    "STATE_EVENT",
    "breaker_resource_id",
    "component_resource_id",
    "emit_rejected",
    "install",
    "on_transition",
    "publish_state",
    "set_component",
]

STATE_EVENT = "prefect-ft.breaker.state"

log = logging.getLogger("prefect_ft.tasks.events")
_components: weakref.WeakKeyDictionary[CircuitBreaker, str] = weakref.WeakKeyDictionary()
_install_lock = threading.Lock()
_installed = False


def breaker_resource_id(name: str) -> str:
    """`prefect-ft.breaker.<name>`."""
    return f"prefect-ft.breaker.{name}"


def component_resource_id(name: str) -> str:
    """`prefect-ft.component.<name>`."""
    return f"prefect-ft.component.{name}"


def install() -> None:
    """Register `on_transition` as a global breaker listener (once per process)."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if not _installed:
            add_global_listener(on_transition)
            _installed = True
            from prefect_ft.ops import health, metrics  # operations: issue 10

            metrics.install()  # the series Prefect's client metrics server (4201) exposes
            health.watch_transitions()  # prefect-ft.health.changed from the moving process


def set_component(breaker: CircuitBreaker, component: str) -> None:
    """Name the component a breaker belongs to (default: the breaker's own name)."""
    _components[breaker] = component


def on_transition(breaker: CircuitBreaker, event: BreakerEvent) -> None:
    """The global listener: emit `prefect-ft.breaker.<kind>` for a local transition."""
    if event.remote:
        return
    retry_after = event.open_seconds if event.kind == "opened" else None
    _emit(
        f"prefect-ft.breaker.{event.kind}",
        breaker,
        event.to_state,
        {
            "from_state": event.from_state,
            "to_state": event.to_state,
            "reason": event.reason,
            "open_seconds": event.open_seconds,
            "retry_after": retry_after,
        },
    )


def publish_state(breaker: CircuitBreaker) -> None:
    """Emit `prefect-ft.breaker.state` with the breaker's current state."""
    try:
        record = breaker.record
        state = record.effective_state
        retry_after = max(0.0, record.open_until - breaker.now()) if state == "OPEN" else None
    except Exception:  # an event is never worth a failed task
        log.debug("cannot read breaker state for publishing", exc_info=True)
        return
    payload = {"from_state": None, "to_state": state, "reason": "state published"}
    _emit(
        STATE_EVENT, breaker, state, {**payload, "open_seconds": None, "retry_after": retry_after}
    )


def emit_rejected(
    breaker: CircuitBreaker,
    error: BaseException,
    *,
    rejected_by: str,
    dead_letter: str | None = None,
) -> None:
    """Emit `prefect-ft.breaker.rejected` for one refused call."""
    try:
        state = breaker.state
    except Exception:
        state = "UNKNOWN"
    _emit(
        "prefect-ft.breaker.rejected",
        breaker,
        state,
        {
            "from_state": state,
            "to_state": state,
            "reason": str(error),
            "open_seconds": None,
            "retry_after": getattr(error, "retry_after", None),
            "rejected_by": rejected_by,
            "dead_letter": dead_letter,
        },
    )


def _emit(name: str, breaker: CircuitBreaker, state: str, payload: dict[str, Any]) -> None:
    try:
        from prefect.events import emit_event

        breaker_name = breaker.name
        component = _components.get(breaker, breaker_name)
        payload = {**payload, "breaker": breaker_name, "component": component}
        emit_event(
            name,
            resource={
                "prefect.resource.id": breaker_resource_id(breaker_name),
                "prefect.resource.name": breaker_name,
                "prefect-ft.state": str(state),
                "prefect-ft.component": component,
            },
            related=[
                {
                    "prefect.resource.id": breaker_resource_id(breaker_name),
                    "prefect.resource.role": "breaker",
                    "prefect.resource.name": breaker_name,
                },
                {
                    "prefect.resource.id": component_resource_id(component),
                    "prefect.resource.role": "component",
                    "prefect.resource.name": component,
                },
            ],
            payload=payload,
        )
    except Exception:  # events are best effort: never break the call that caused them
        log.debug("emitting %s failed", name, exc_info=True)
