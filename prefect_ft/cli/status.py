"""`prefect-ft status [--json]`: every component's breaker state, health, failure rate, bulkhead
use, last alarm and last recovery, plus the system's health and any active emergency stop.

Read from the store (breaker records, the operator notes of `prefect_ft.ops.view`, the emergency
record), so it shows every process's breakers. Failure rates and bulkhead use are counted per
process: a command line process has none of its own, so they show as `-` here (the ops server
of a running pipeline, `GET /health` and `/metrics`, has them). Health is decided by
`prefect_ft.core.health`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

from cyclopts import Parameter

from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError

__all__ = ["collect", "status"]

_STYLE = {"Healthy": "green", "Warning": "yellow", "Degraded": "dark_orange", "Critical": "red"}


def _when(t: Any) -> str:
    try:
        return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def collect(store: str | None = None) -> dict[str, Any]:
    """Everything `status` shows, as JSON-ready data."""
    from prefect_ft.core.health import component_health, system_health
    from prefect_ft.ops import emergency
    from prefect_ft.ops.view import breaker_views, bulkhead_views, health_inputs, read_notes
    from prefect_ft.stores import shared_store

    s = shared_store(store)
    now = s.time()
    views = breaker_views(s)
    bulkheads = bulkhead_views()
    notes = read_notes(s)
    inputs = health_inputs(views, bulkheads, notes, now)
    healths = {name: component_health(i) for name, i in inputs.items()}
    system = system_health(healths)
    live = {v.component for v in views if v.live}
    slots = {b.name: b for b in bulkheads}
    stop, _ = emergency.current(s)
    rows = []
    for name, i in inputs.items():
        alarm = notes.alarms.get(name)
        rec = notes.recoveries.get(name)
        rows.append(
            {
                "component": name,
                "breaker_state": i.breaker_state,
                "health": healths[name].level.label,
                "reasons": list(healths[name].reasons),
                "failure_rate": i.failure_rate if name in live else None,
                "bulkhead_in_use": (
                    slots[name].limit - slots[name].available if name in slots else None
                ),
                "bulkhead_limit": slots[name].limit if name in slots else None,
                "last_alarm": {**alarm, "at_iso": _when(alarm.get("at"))} if alarm else None,
                "last_recovery": {**rec, "at_iso": _when(rec.get("at"))} if rec else None,
            }
        )
    return {
        "store": s.url,
        "system": {"health": system.level.label, "reasons": list(system.reasons)},
        "emergency": stop,
        "components": rows,
    }


def _table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from prefect_ft.ops.emergency import describe

    console = Console(width=max(160, Console().width))  # a pipe gets 80: too narrow
    system = data["system"]["health"]
    title = f"prefect-ft: system [{_STYLE[system]}]{system}[/] (store {data['store']})"
    table = Table(title=title, title_justify="left")
    for col in ("component", "breaker", "health", "failure rate", "bulkhead", "last alarm"):
        table.add_column(col)
    table.add_column("last recovery")
    for r in data["components"]:
        rate = f"{r['failure_rate']:.0%}" if r["failure_rate"] is not None else "-"
        bulk = f"{r['bulkhead_in_use']}/{r['bulkhead_limit']}" if r["bulkhead_limit"] else "-"
        a, rec = r["last_alarm"], r["last_recovery"]
        alarm = f"{a['severity']} {a.get('pattern', '')} {a['at_iso']}" if a else "-"
        recovery = f"{rec['status']} {rec.get('strategy', '')} {rec['at_iso']}" if rec else "-"
        health = f"[{_STYLE[r['health']]}]{r['health']}[/]"
        table.add_row(r["component"], r["breaker_state"], health, rate, bulk, alarm, recovery)
    console.print(table)
    if data["emergency"]:
        console.print(f"[bold red]EMERGENCY STOP ACTIVE[/] {describe(data['emergency'])}")


def status(
    *,
    store: str | None = None,
    json_output: Annotated[bool, Parameter(name="--json", negative="")] = False,
) -> int:
    """Show each component's breaker state, health, failure rate, bulkhead use, last alarm and
    last recovery.

    Args:
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        json_output: print JSON for scripts instead of a table.
    """
    try:
        data = collect(store)
    except (ConfigurationError, StoreUnavailableError) as exc:
        print(f"prefect-ft: error: {exc}", file=sys.stderr)
        return 1
    if json_output:
        print(json.dumps(data, indent=2))
    else:
        _table(data)
    return 0
