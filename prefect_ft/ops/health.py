"""The health driver: gathers the view, asks `core.health`, and announces each change.

`HealthMonitor.check()` reads breakers (live objects, plus the store's records), bulkheads and
the notes, decides every component's level and the system's, sets the `prefect_ft_health_level`
gauge, and emits `prefect-ft.health.changed` for each component (and the system) whose level
differs from the last check in this monitor. Nothing here raises into a caller: a store that is
down reads as "no notes", an event that cannot be sent is logged at debug level.

The first check of a monitor announces nothing: it only learns the current levels. A level is
a fact about now, so a process that starts does not re-announce what the previous one did.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Collection
from typing import Any

from prefect_ft.core.health import (
    ComponentHealth,
    HealthRules,
    Level,
    SystemHealth,
    component_health,
    system_health,
)
from prefect_ft.ops.view import Notes, breaker_views, bulkhead_views, health_inputs, read_notes
from prefect_ft.stores import BreakerStore

__all__ = [
    "HEALTH_EVENT",
    "SYSTEM",
    "HealthMonitor",
    "emit_health_changed",
    "unwatch_transitions",
    "watch_transitions",
]

HEALTH_EVENT = "prefect-ft.health.changed"
SYSTEM = "system"
log = logging.getLogger("prefect_ft.ops.health")

Emitter = Callable[[str, Level | None, Level, tuple[str, ...]], None]


_outbox: queue.SimpleQueue[tuple[str, Level | None, Level, tuple[str, ...]]] = queue.SimpleQueue()
_sender: threading.Thread | None = None
_sender_lock = threading.Lock()


def emit_health_changed(
    component: str, before: Level | None, after: Level, reasons: tuple[str, ...]
) -> None:
    """Queue `prefect-ft.health.changed` for `component` (resource `prefect-ft.component.<name>`;
    the system's resource is `prefect-ft.system`).

    A daemon thread sends it: the first event of a process may wait on Prefect's events client
    (connecting, or starting an ephemeral API), and a health check runs inside HTTP handlers and
    breaker listeners, which must not wait on that.
    """
    global _sender
    _outbox.put((component, before, after, reasons))
    if _sender is None or not _sender.is_alive():
        with _sender_lock:
            if _sender is None or not _sender.is_alive():
                _sender = threading.Thread(target=_send_loop, name="prefect-ft-health", daemon=True)
                _sender.start()


def _send_loop() -> None:
    while True:
        _send(*_outbox.get())


def _send(component: str, before: Level | None, after: Level, reasons: tuple[str, ...]) -> None:
    try:
        from prefect.events import emit_event

        rid = "prefect-ft.system" if component == SYSTEM else f"prefect-ft.component.{component}"
        emit_event(
            HEALTH_EVENT,
            resource={
                "prefect.resource.id": rid,
                "prefect.resource.name": component,
                "prefect-ft.component": component,
                "prefect-ft.health": after.label,
            },
            payload={
                "component": component,
                "from_level": before.label if before is not None else None,
                "to_level": after.label,
                "level": int(after),
                "reasons": list(reasons),
            },
        )
        from prefect_ft.ops.alerts import alert_on  # deduplicated, rate-limited notification

        alert_on(HEALTH_EVENT, component, {"to_level": after.label, "reasons": list(reasons)})
    except Exception:  # an event is never worth a failed caller
        log.debug("emitting %s failed", HEALTH_EVENT, exc_info=True)


class HealthMonitor:
    """Decides health on demand and announces changes.

    Args:
        store: where breaker records and notes are read; None: live breakers only, no notes.
        critical: components whose outage is the system's (None: all).
        rules: the edges of the health table.
        emit: `emit(component, before, after, reasons)`; default: a Prefect event.
        alarm_window_s: how long an alarm counts as recent.
        system: also judge and announce the system level (a process that sees only its own
            breakers leaves that to the ops server, which sees the fleet).
    """

    def __init__(
        self,
        store: BreakerStore | None = None,
        *,
        critical: Collection[str] | None = None,
        rules: HealthRules | None = None,
        emit: Emitter | None = None,
        alarm_window_s: float = 900.0,
        system: bool = True,
    ) -> None:
        self.store = store
        self.system = system
        self.critical = critical
        self.rules = rules or HealthRules()
        self._emit = emit or emit_health_changed
        self.alarm_window_s = alarm_window_s
        self._levels: dict[str, Level] | None = None
        self._lock = threading.Lock()

    def check(self) -> SystemHealth:
        """The health now; emits `prefect-ft.health.changed` for what changed since last time."""
        from prefect_ft.ops import metrics

        store = self.store
        notes = read_notes(store) if store is not None else Notes()
        try:
            now = store.time() if store is not None else 0.0
        except Exception:
            now = 0.0
        inputs = health_inputs(
            breaker_views(store), bulkhead_views(), notes, now, self.alarm_window_s
        )
        comps: dict[str, ComponentHealth] = {
            name: component_health(i, self.rules) for name, i in inputs.items()
        }
        system = system_health(comps, self.critical)
        levels = {name: h.level for name, h in comps.items()}
        if self.system:
            levels[SYSTEM] = system.level
        for name, level in levels.items():
            metrics.set_health_level(name, level)
        with self._lock:
            before, self._levels = self._levels, levels
        if before is not None:
            reasons: dict[str, tuple[str, ...]] = {n: h.reasons for n, h in comps.items()}
            reasons[SYSTEM] = system.reasons
            for name, level in levels.items():
                if before.get(name, Level.HEALTHY) != level:
                    self._emit(name, before.get(name), level, reasons[name])
        return system

    def report(self) -> dict[str, Any]:
        """`check()` as JSON-ready data: the body of `GET /health`."""
        return self.check().to_dict()


_watcher: HealthMonitor | None = None
_watch_lock = threading.Lock()


def _on_transition(breaker: Any, event: Any) -> None:
    watcher = _watcher
    if watcher is not None and not event.remote:  # the process that moved it announces it
        watcher.check()


def watch_transitions(emit: Emitter | None = None) -> HealthMonitor:
    """Announce component health changes when a breaker of this process makes a transition
    (idempotent; `prefect_ft.ops.metrics.install` calls it). Returns the monitor."""
    global _watcher
    from prefect_ft.breaker import add_global_listener

    with _watch_lock:
        if _watcher is None:
            _watcher = HealthMonitor(None, emit=emit, system=False)
            _watcher.check()  # learn the levels now, so the first transition is a change
            add_global_listener(_on_transition)
        return _watcher


def unwatch_transitions() -> None:
    global _watcher
    from prefect_ft.breaker import remove_global_listener

    with _watch_lock:
        remove_global_listener(_on_transition)
        _watcher = None
