"""What operations read: breakers and bulkheads as this process and the store see them, and the
operator notes (last alarm, last recovery per component) kept in the store.

Two sources, one shape. Live objects (`live_breakers()`, the process's bulkhead counts) give
call counts and window rates; the store gives every breaker's shared state, including breakers
no object in this process uses (what `prefect-ft ops-server` shows on its own). The notes are
one store record, written with compare-and-set, so a detection run or a recovery in any process
shows in every process's health.

This module decides nothing (`prefect_ft.core.health` does) and reads no clock but the store's.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from prefect_ft.breaker import CircuitBreaker, live_breakers
from prefect_ft.bulkhead.slots import live_slots
from prefect_ft.core.conditions import AnyOf, FailureRate, SlowCallRate, TripCondition
from prefect_ft.core.health import RECOVERY_STATUSES, HealthInputs
from prefect_ft.core.states import BreakerRecord
from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError
from prefect_ft.stores import BreakerStore
from prefect_ft.stores.index import known_breakers

__all__ = [
    "NOTES_KEY",
    "BreakerView",
    "BulkheadView",
    "Notes",
    "breaker_views",
    "bulkhead_views",
    "component_of",
    "health_inputs",
    "note_alarm",
    "note_recovery",
    "read_notes",
]

NOTES_KEY = "prefect-ft:ops:notes"


@dataclass(frozen=True, slots=True)
class BreakerView:
    """One breaker: shared state, plus this process's counts and rates when it is live here."""

    name: str
    component: str
    state: str
    trips: int = 0
    live: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    failure_rate: float = 0.0
    slow_call_rate: float = 0.0
    failure_threshold: float | None = None
    slow_call_threshold: float | None = None
    minimum_calls: int = 1
    store_available: bool = True


@dataclass(frozen=True, slots=True)
class BulkheadView:
    """One bulkhead name in this process: its limit, free permits, waiters and queue waits."""

    name: str
    limit: int
    available: int
    waiting: int
    waits: int
    waited_seconds: float

    @property
    def saturation(self) -> float:
        return min(1.0, (self.limit - self.available) / self.limit) if self.limit else 1.0


@dataclass(frozen=True, slots=True)
class Notes:
    """Last alarm and last recovery per component (store-clock times)."""

    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    recoveries: dict[str, dict[str, Any]] = field(default_factory=dict)


def component_of(breaker: CircuitBreaker) -> str:
    """The component a task gate named for the breaker, else the breaker's name."""
    # read only when prefect_ft.tasks is already loaded: importing it would import Prefect into
    # processes (pool children, the CLI) that only hold plain breakers
    events = sys.modules.get("prefect_ft.tasks.events")
    names = getattr(events, "_components", None)
    return str(names.get(breaker, breaker.name)) if names is not None else breaker.name


def _rate_conditions(trip: TripCondition) -> list[TripCondition]:
    if isinstance(trip, AnyOf):  # AllOf too
        return [c for m in trip.members for c in _rate_conditions(m)]
    return [trip]


def _live_view(b: CircuitBreaker) -> BreakerView:
    rec = b.record
    counts = b.window_counts()
    conds = _rate_conditions(b.config.trip)
    fr = [c for c in conds if isinstance(c, FailureRate)]
    sr = [c for c in conds if isinstance(c, SlowCallRate)]
    n = counts.calls
    return BreakerView(
        name=b.name,
        component=component_of(b),
        state=rec.effective_state,
        trips=rec.trips,
        live=True,
        counts=dict(b.counts),
        calls=n,
        failure_rate=counts.failures / n if n else 0.0,
        slow_call_rate=counts.slow / n if n else 0.0,
        failure_threshold=min(c.percent for c in fr) / 100.0 if fr else None,
        slow_call_threshold=min(c.percent for c in sr) / 100.0 if sr else None,
        minimum_calls=min((c.minimum_calls for c in (*fr, *sr)), default=1),
        store_available=b.store_available,
    )


def breaker_views(store: BreakerStore | None = None) -> list[BreakerView]:
    """Every live breaker of this process, then (with `store`) every other breaker it knows."""
    views = {}
    for b in live_breakers():
        if b.name not in views:  # two objects for one name share one record: show it once
            views[b.name] = _live_view(b)
    if store is not None:
        try:
            names = [n for n in known_breakers(store) if n not in views]
            records = store.read_many([f"prefect-ft:breaker:{n}" for n in names])
        except StoreUnavailableError:
            names, records = [], {}
        for n in names:
            v = records.get(f"prefect-ft:breaker:{n}")
            try:
                rec = BreakerRecord.from_dict(json.loads(v.data)) if v and v.data else None
            except (ValueError, TypeError, AttributeError, KeyError):
                rec = None  # a corrupt record is the breaker's business (it quarantines it)
            rec = rec or BreakerRecord()
            views[n] = BreakerView(n, n, rec.effective_state, rec.trips)
    return sorted(views.values(), key=lambda v: v.name)


def bulkhead_views() -> list[BulkheadView]:
    """Every bulkhead name in use in this process (local permits; shared leases not read)."""
    out = []
    for name, s in sorted(live_slots().items()):
        with s.lock:
            out.append(
                BulkheadView(name, s.limit, s.free(), s.waiting(), s.waits, s.waited_seconds)
            )
    return out


def read_notes(store: BreakerStore) -> Notes:
    """The notes record; an unreadable one reads as empty (the next note rewrites it)."""
    try:
        v = store.read(NOTES_KEY)
        data = json.loads(v.data) if v.data else {}
        return Notes(dict(data.get("alarms", {})), dict(data.get("recoveries", {})))
    except (StoreUnavailableError, ValueError, AttributeError, TypeError):
        return Notes()


def _note(store: BreakerStore, section: str, component: str, entry: dict[str, Any]) -> None:
    for _ in range(16):  # a lost race only means another note landed meanwhile
        v = store.read(NOTES_KEY)
        try:
            data = json.loads(v.data) if v.data else {}
            data = data if isinstance(data, dict) else {}
        except ValueError:
            data = {}
        data.setdefault(section, {})[component] = {**entry, "at": store.time()}
        ok, _ = store.cas(NOTES_KEY, v.version, json.dumps(data))
        if ok:
            return


def note_alarm(store: BreakerStore, component: str, severity: str, pattern: str = "") -> None:
    """Remember `component`'s latest alarm (the detection run calls this per alarm)."""
    _note(store, "alarms", component, {"severity": str(severity), "pattern": str(pattern)})


def note_recovery(
    store: BreakerStore,
    component: str,
    status: str,
    strategy: str = "",
    recovery_id: str = "",
) -> None:
    """Remember `component`'s latest recovery: `running`, `failed` or `succeeded`."""
    if status not in RECOVERY_STATUSES:
        raise ConfigurationError(f"status must be one of {RECOVERY_STATUSES} (got {status!r})")
    entry = {"status": status, "strategy": strategy, "recovery_id": recovery_id}
    _note(store, "recoveries", component, entry)


def health_inputs(
    breakers: list[BreakerView],
    bulkheads: list[BulkheadView],
    notes: Notes,
    now: float,
    alarm_window_s: float = 900.0,
) -> dict[str, HealthInputs]:
    """One `HealthInputs` per component: its breaker(s), bulkhead, recent alarm and recovery.

    A component with several breakers takes the worst breaker state (the first by the order
    OPEN-like before the rest) and the highest rates; a bulkhead counts for the component of
    the same name.
    """
    by_comp: dict[str, list[BreakerView]] = {}
    for b in breakers:
        by_comp.setdefault(b.component, []).append(b)
    slots = {h.name: h for h in bulkheads}
    comps = sorted({*by_comp, *slots, *notes.alarms, *notes.recoveries})
    out = {}
    order = ("FORCED_OPEN", "OPEN", "HALF_OPEN", "RECOVERY", "DISABLED", "METRICS_ONLY", "CLOSED")
    for comp in comps:
        views = sorted(by_comp.get(comp, []), key=lambda v: order.index(v.state))
        worst = views[0] if views else None
        alarm = notes.alarms.get(comp)
        recent = alarm is not None and now - float(alarm.get("at", 0.0)) <= alarm_window_s
        recovery = notes.recoveries.get(comp, {}).get("status")
        rated = max(views, key=lambda v: v.failure_rate, default=None)
        slow = max(views, key=lambda v: v.slow_call_rate, default=None)
        out[comp] = HealthInputs(
            component=comp,
            breaker_state=worst.state if worst else "CLOSED",
            trips=worst.trips if worst else 0,
            calls=rated.calls if rated else 0,
            minimum_calls=rated.minimum_calls if rated else 1,
            failure_rate=rated.failure_rate if rated else 0.0,
            failure_threshold=rated.failure_threshold if rated else None,
            slow_call_rate=slow.slow_call_rate if slow else 0.0,
            slow_call_threshold=slow.slow_call_threshold if slow else None,
            bulkhead_saturation=slots[comp].saturation if comp in slots else None,
            alarm_severity=str(alarm["severity"]) if recent and alarm else None,
            recovery=recovery if recovery in RECOVERY_STATUSES else None,
            store_available=all(v.store_available for v in views),
        )
    return out
