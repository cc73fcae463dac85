"""Recovery flows on the test server with real components served by `serve_control`.

Success: breaker OPEN -> HALF_OPEN, `prefect-ft.recovery.started/succeeded`, an artifact.
Failure: validation fails -> rollback, breaker stays OPEN for longer, each next attempt waits
longer, `prefect-ft.recovery.failed`, and after the last phase the operator alert. Bad input
(unreachable endpoint, hanging restart, unknown component, no component) -> a Failed run with a
one-line message, never a hang.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.health_sweep import health_sweep
from flows.recovery import connection_reset, graceful_restart, recover
from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
from prefect_ft.breaker import CircuitBreaker
from prefect_ft.recovery import serve_control
from prefect_ft.recovery.report import artifact_key
from prefect_ft.tasks.events import component_resource_id
from tests.prefect.helpers import events, unique, wait_for
from tests.recovery.components import Hanging, Patient

FAST = {"check_interval_seconds": 0.2, "action_timeout_seconds": 5.0}


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def saved() -> Iterator:
    """Save a ComponentSpec for a component (served, or at a given URL); deleted afterwards."""
    servers, names = [], []

    def save(component: object | None, url: str | None = None, **recovery) -> str:
        name = unique("rec")
        if component is not None:
            servers.append(serve_control(component))
            url = servers[-1].url
        policy = {"max_attempts": 3, "base_seconds": 0.1, "cap_seconds": 0.4}
        ComponentSpec(
            component=name,
            breaker=CircuitBreakerPolicy(failure_threshold=1, open_seconds=30),
            recovery=RecoveryPolicy(**{**policy, "health_check_timeout_seconds": 2, **recovery}),
            control_endpoint=url,
        ).save(name, overwrite=True)
        names.append(name)
        return name

    yield save
    for srv in servers:
        srv.stop()
    with get_client(sync_client=True) as client:
        for name in names:
            doc = client.read_block_document_by_name(name, ComponentSpec.get_block_type_slug())
            client.delete_block_document(doc.id)


def open_breaker(name: str) -> CircuitBreaker:
    spec = ComponentSpec.load(name)
    breaker = CircuitBreaker(spec.breaker.to_config(name), refresh_seconds=None)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert breaker.state == "OPEN"
    return breaker


def artifact_markdown(name: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(name)]))
        )
    return found[0].data if found else ""


def event_names(name: str, kinds: list[str]) -> dict[str, list]:
    resource = component_resource_id(name)
    return {k: events(f"prefect-ft.recovery.{k}", resource) for k in kinds}


def test_recover_success_half_opens_the_breaker(saved) -> None:
    name = saved(Patient(cures={"reset_connections"}), action="connection-reset")
    breaker = open_breaker(name)
    result = asyncio.run(recover(name, failure_type="ConnectionError", reason="test", **FAST))
    assert result["outcome"] == "succeeded", result["message"]
    assert [a["strategy"] for a in result["attempts"]] == ["connection-reset"]
    breaker.refresh()
    assert breaker.state == "HALF_OPEN"
    found = wait_for(lambda: event_names(name, ["started", "succeeded"]), lambda f: all(f.values()))
    assert len(found["started"]) == 1 and len(found["succeeded"]) == 1
    assert found["succeeded"][0].payload["recovery_id"] == result["recovery_id"]
    assert "connection-reset" in artifact_markdown(name)


def test_recover_failure_rolls_back_stays_open_and_alerts(saved) -> None:
    patient = Patient(cures=set())
    name = saved(patient)
    breaker = open_breaker(name)
    opened_until = breaker.record.open_until
    state = asyncio.run(recover(name, reason="test", return_state=True, **FAST))
    assert state.is_failed()
    assert "an operator must act" in state.message and "\n" not in state.message
    breaker.refresh()
    assert breaker.state == "OPEN" and breaker.record.open_until > opened_until
    assert patient.version == "v2"  # the long-term reload was rolled back
    markdown = artifact_markdown(name)
    assert "long-term | model-reload" in markdown and "done: {'version': 'v2'}" in markdown
    found = wait_for(
        lambda: event_names(name, ["failed", "escalated"]),
        lambda f: len(f["failed"]) >= 3 and len(f["escalated"]) >= 3,
    )
    assert len(found["failed"]) == 3
    waits = sorted((e.occurred, e.payload["next_attempt_in"]) for e in found["failed"])
    bounds = [0.1, 0.2, 0.4]  # full jitter below 0.1 * 2**n: the bound grows each attempt
    assert all(w <= b + 1e-9 for (_, w), b in zip(waits, bounds, strict=True))
    operator = [e for e in found["escalated"] if e.resource["prefect-ft.phase"] == "operator"]
    assert len(operator) == 1 and operator[0].payload["alert"] is True


def test_unreachable_endpoint_fails_with_one_line(saved) -> None:
    name = saved(None, url=dead_url())
    open_breaker(name)
    state = asyncio.run(connection_reset(name, return_state=True, **FAST))
    assert state.is_failed()
    assert "unreachable" in state.message and "\n" not in state.message


def test_hanging_restart_fails_by_timeout(saved) -> None:
    hanging = Hanging()
    name = saved(hanging)
    open_breaker(name)
    try:
        state = asyncio.run(
            graceful_restart(
                name, action_timeout_seconds=0.5, check_interval_seconds=0.2, return_state=True
            )
        )
    finally:
        hanging.release.set()
    assert state.is_failed()
    assert "timed out after 0.5 s" in state.message


def test_unknown_component_fails() -> None:
    state = asyncio.run(recover("no-such-component-xyz", return_state=True))
    assert state.is_failed()
    assert "unknown component 'no-such-component-xyz'" in state.message


@pytest.mark.parametrize("component", ["", "{{ event.payload.component }}"])
def test_event_without_component_fails_fast(component: str) -> None:
    state = asyncio.run(recover(component, return_state=True))
    assert state.is_failed()
    assert "bad recovery request: component: must be a component name" in state.message


def test_health_sweep_recovers_the_unhealthy(saved) -> None:
    sick = Patient(cures={"restart"})
    well = Patient()
    well.healthy = True
    # the sweep's recover runs with the defaults: 3 checks 1 s apart need > 2 s
    sick_name, well_name = (saved(c, health_check_timeout_seconds=10) for c in (sick, well))
    gone_name = saved(None, url=dead_url())
    result = asyncio.run(health_sweep(timeout_seconds=2))
    assert well_name in result["healthy"]
    assert result["unhealthy"][sick_name] == "model answers garbage"
    assert result["unhealthy"][gone_name].startswith("unreachable")
    assert result["recoveries"] == {sick_name: "Completed", gone_name: "Failed"}
    assert sick.healthy
