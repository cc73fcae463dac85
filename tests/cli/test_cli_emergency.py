"""`prefect-ft emergency-stop|emergency-clear` and audited `breakers` actions, as subprocesses
against a Prefect test server: deployments and automations paused and exactly restored."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.events.actions import RunDeployment
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.automations import AutomationCore, EventTrigger

from prefect_ft import CircuitBreaker
from tests.cli.conftest import run_cli, unique


def _deployment(client: Any, flow_id: Any, name: str, paused: bool) -> Any:
    schedule = DeploymentScheduleCreate(schedule=IntervalSchedule(interval=300), active=True)
    return client.create_deployment(flow_id=flow_id, name=name, schedules=[schedule], paused=paused)


def _automation(client: Any, name: str, deployment_id: Any, enabled: bool) -> Any:
    trigger = EventTrigger(expect={"prefect-ft.breaker.opened"}, match={"prefect.resource.id": "x"})
    action = RunDeployment(source="selected", deployment_id=deployment_id, parameters={})
    return client.create_automation(
        AutomationCore(name=name, trigger=trigger, actions=[action], enabled=enabled)
    )


def _events(
    name: str,
    resource: str,
    expect: int = 1,
    timeout: float = 30.0,
    where: Callable[[Any], bool] = lambda e: True,
) -> list[Any]:
    """Events `name` of `resource` that satisfy `where` (other tests on this server emit the same
    names: the alerts test announces a stop of its own)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[name]),
                    resource=EventResourceFilter(id=[resource]),
                ),
                limit=50,
            )
            found = [e for e in page.events if where(e)]
            if len(found) >= expect or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def test_stop_pauses_what_was_active_and_clear_resumes_exactly_that(
    api_url: str, store_url: str
) -> None:
    CircuitBreaker("ipc", store=store_url, refresh_seconds=None)
    by_hand = CircuitBreaker("model", store=store_url, refresh_seconds=None)
    by_hand.force_open()
    flow = unique("ran-pipeline")
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(flow)
        active = _deployment(client, flow_id, "main", paused=False)
        already = _deployment(client, flow_id, "backfill", paused=True)
        recover = _automation(client, unique("recover"), active, enabled=True)
        off = _automation(client, unique("recover-off"), active, enabled=False)

    out = run_cli(
        "emergency-stop",
        "--reason",
        "model melts",
        "--deployments",
        f"{flow}/*",
        api=api_url,
        store=store_url,
    )
    assert out.returncode == 0, out.stderr
    assert "emergency stop active, by " in out.stdout and "(reason: model melts)" in out.stdout
    assert f"deployment {flow}/main: paused" in out.stdout
    assert f"deployment {flow}/backfill" not in out.stdout
    with get_client(sync_client=True) as client:
        assert client.read_deployment(active).paused and client.read_deployment(already).paused
        assert not client.read_automation(recover).enabled
        assert not client.read_automation(off).enabled
    ours = lambda e: e.payload.get("reason") == "model melts"  # noqa: E731
    shutdown = _events("prefect-ft.emergency.shutdown", "prefect-ft.emergency", where=ours)
    assert len(shutdown) == 1

    again = run_cli("emergency-stop", "--reason", "x", api=api_url, store=store_url)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    assert "an emergency stop is already active, by " in again.stderr
    assert "(reason: model melts); nothing changed" in again.stderr

    cleared = run_cli("emergency-clear", api=api_url, store=store_url)
    assert cleared.returncode == 0, cleared.stderr
    with get_client(sync_client=True) as client:
        assert not client.read_deployment(active).paused  # it was active: resumed
        assert client.read_deployment(already).paused  # it was paused before: stays
        assert client.read_automation(recover).enabled
        assert not client.read_automation(off).enabled
    by_hand.refresh()
    assert by_hand.state == "FORCED_OPEN"  # forced open by hand before the stop: stays so
    assert CircuitBreaker("ipc", store=store_url, refresh_seconds=None).state == "CLOSED"
    assert len(_events("prefect-ft.emergency.cleared", "prefect-ft.emergency", where=ours)) == 1

    none = run_cli("emergency-clear", api=api_url, store=store_url)
    assert none.returncode == 1
    assert none.stderr == "prefect-ft: error: no emergency stop is active; nothing changed\n"


def test_manual_breaker_actions_are_audited_with_who_and_why(api_url: str, store_url: str) -> None:
    name = unique("audited")
    CircuitBreaker(name, store=store_url, refresh_seconds=None)
    for action in ("force-open", "metrics-only", "disable", "clear", "reset"):
        out = run_cli(
            "breakers", action, name, "--reason", f"why {action}", api=api_url, store=store_url
        )
        assert out.returncode == 0, out.stderr
    resource = f"prefect-ft.breaker.{name}"
    seen = {}
    for action in ("force-open", "metrics-only", "disable", "clear", "reset"):
        events = _events(f"prefect-ft.audit.{action}", resource)
        assert len(events) == 1, action
        seen[action] = events[0].payload
    assert seen["force-open"]["reason"] == "why force-open"
    assert seen["force-open"]["from_state"] == "CLOSED"
    assert seen["force-open"]["to_state"] == "FORCED_OPEN"
    assert {"user", "host"} <= set(seen["reset"]["by"])
    assert seen["reset"]["to_state"] == "CLOSED"

    from prefect_ft.ops.audit import read_log
    from prefect_ft.stores import shared_store

    log = [e for e in read_log(shared_store(store_url)) if e.get("breaker") == name]
    assert [e["action"] for e in log] == ["force-open", "metrics-only", "disable", "clear", "reset"]
