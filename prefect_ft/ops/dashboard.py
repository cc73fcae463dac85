"""The dashboard: a Prefect table artifact, one row per component, updated by each detection run.

Its key is stable (`prefect-ft-dashboard` by default), so the UI's Artifacts page shows the
latest table under one name, with the earlier ones as its history. A row holds the component,
its breaker state (from the store, so every process's breakers count), its health level and
reasons (`prefect_ft.core.health`), the failure rate of the task runs the detection run read,
and the last alarm and last recovery (the notes in the store, `prefect_ft.ops.view`).

Also here: `record_alarms`, which the detection run calls for its new alarms, so health sees
them in every process (a note) and Prometheus counts them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from prefect_ft.core.health import component_health
from prefect_ft.ops.view import breaker_views, health_inputs, note_alarm, read_notes
from prefect_ft.stores import BreakerStore

__all__ = ["DASHBOARD_KEY", "dashboard_rows", "publish_dashboard", "record_alarms"]

DASHBOARD_KEY = "prefect-ft-dashboard"


def _when(at: Any) -> str:
    try:
        t = float(at)
    except (TypeError, ValueError):
        return ""
    if t > 1e9:  # wall-clock seconds (SQLite and Redis stores): show UTC
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"t={t:.1f}"


def record_alarms(store: BreakerStore, alarms: Iterable[Any]) -> None:
    """Note each alarm on each of its components and count it in Prometheus."""
    from prefect_ft.ops import metrics

    for a in alarms:
        for comp in a.components:
            note_alarm(store, comp, str(a.severity), str(a.pattern))
        metrics.record_detection(str(a.pattern), str(a.severity))


def dashboard_rows(
    store: BreakerStore,
    components: Iterable[str] = (),
    failure_rates: Mapping[str, float] | None = None,
    alarm_window_s: float = 900.0,
) -> list[dict[str, Any]]:
    """The table: one row per component named, with a breaker, or with a note."""
    notes = read_notes(store)
    views = breaker_views(store)
    inputs = health_inputs(views, [], notes, store.time(), alarm_window_s)
    state = {v.component: v.state for v in views}
    rates = dict(failure_rates or {})
    rows = []
    for comp in sorted({*components, *inputs}):
        health = component_health(inputs[comp]) if comp in inputs else None
        alarm = notes.alarms.get(comp)
        rec = notes.recoveries.get(comp)
        rows.append(
            {
                "component": comp,
                "state": state.get(comp, "-"),
                "health": health.level.label if health else "Healthy",
                "why": "; ".join(health.reasons) if health else "",
                "failure_rate": f"{rates[comp]:.1%}" if comp in rates else "-",
                "last_alarm": (
                    f"{alarm.get('severity')} {alarm.get('pattern')} at {_when(alarm.get('at'))}"
                    if alarm
                    else "-"
                ),
                "last_recovery": (
                    f"{rec.get('status')} {rec.get('strategy') or ''} at {_when(rec.get('at'))}"
                    if rec
                    else "-"
                ),
            }
        )
    return rows


def publish_dashboard(
    store: BreakerStore,
    components: Iterable[str] = (),
    failure_rates: Mapping[str, float] | None = None,
    key: str = DASHBOARD_KEY,
) -> str | None:
    """Create the next version of the dashboard artifact; returns its id."""
    from prefect.artifacts import create_table_artifact

    rows = dashboard_rows(store, components, failure_rates)
    worst = [r for r in rows if r["health"] != "Healthy"]
    summary = ", ".join(f"{r['component']} {r['health']}" for r in worst) or "all healthy"
    art = create_table_artifact(table=rows, key=key, description=f"prefect-ft: {summary}")
    return str(art) if art is not None else None
