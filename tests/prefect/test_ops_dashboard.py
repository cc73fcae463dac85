"""Issue 10 item 7: each detection run updates a table artifact with a stable key."""

from __future__ import annotations

import json

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from prefect_ft import CircuitBreaker
from prefect_ft.history.detection_flow import detect
from prefect_ft.ops.view import note_alarm, note_recovery
from prefect_ft.stores import shared_store
from tests.prefect.helpers import unique


def _tables(key: str) -> list[list[dict]]:
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return [json.loads(a.data) if isinstance(a.data, str) else a.data for a in arts]


def test_each_detection_run_updates_the_dashboard_table() -> None:
    name = unique("dash")
    key = unique("dashboard")
    store = shared_store()
    b = CircuitBreaker(name, store=store, refresh_seconds=None)
    detect(
        components=[name],
        state_key=f"prefect-ft:detection:{name}",
        lag_s=0.0,
        artifact_key=None,
        dashboard_key=key,
        emit=False,
    )
    b.force_open()
    note_alarm(store, name, "HIGH", "burst")
    note_recovery(store, name, "running", "restart")
    summary = detect(
        components=[name],
        state_key=f"prefect-ft:detection:{name}",
        lag_s=0.0,
        artifact_key=None,
        dashboard_key=key,
        emit=False,
    )
    assert summary["dashboard_id"]
    tables = _tables(key)
    assert len(tables) == 2  # one artifact key, one version per run
    rows = {tuple(sorted(r)) for t in tables for r in t}
    assert rows == {
        ("component", "failure_rate", "health", "last_alarm", "last_recovery", "state", "why")
    }
    mine = [next(r for r in t if r["component"] == name) for t in tables]
    assert sorted(r["state"] for r in mine) == ["CLOSED", "FORCED_OPEN"]
    row = next(r for r in mine if r["state"] == "FORCED_OPEN")
    assert row["state"] == "FORCED_OPEN"
    assert row["health"] == "Degraded"
    assert row["why"] == "breaker FORCED_OPEN; recent HIGH alarm; recovery running"
    assert row["last_alarm"].startswith("HIGH burst at ") and row["last_alarm"].endswith(" UTC")
    assert row["last_recovery"].startswith("running restart at ")
