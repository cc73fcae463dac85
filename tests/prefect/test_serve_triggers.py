"""The triggers of `prefect_ft.recovery.deploy` deliver templated parameters, read back from the API.

Each test binds the real trigger definitions to a stand-in flow with the served flow's
signature (the server renders parameters without running anything), emits the real event, and
reads the flow run the automation created. Other tests' breaker events match the same
wildcards, so a test looks only for the run with its own unique component.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity
from prefect_ft.history.detection_flow import emit_alarm
from prefect_ft.recovery.deploy import DEPLOYMENTS, triggers_of
from prefect_ft.tasks.decorator import ft_task
from tests.prefect.helpers import Dependency, call_dependency, fast_policy, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]


@flow(name="stand-in-recover")
def stand_in_recover(
    component: str,
    failure_type: str | None = None,
    reason: str | None = None,
    skip_if_closed: bool = False,
) -> None:
    """The parameters of flows/recovery.py:recover."""


@flow(name="stand-in-replay")
def stand_in_replay(breakers: list[str] | None = None, wait_seconds: float = 0.0) -> None:
    """The parameters of flows/replay_dead_letters.py:replay_dead_letters that triggers set."""


def _definition(name: str):
    return next(d for d in DEPLOYMENTS if d.name == name)


@pytest.fixture
def deployed(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Apply a stand-in deployment with the real triggers; delete it (and its automations) after."""
    made: list[Any] = []

    def deploy(stand_in: Any, name: str) -> Any:
        d = stand_in.to_deployment(name=unique(name), triggers=triggers_of(_definition(name)))
        made.append(d.apply())
        return made[-1]

    yield deploy
    with get_client(sync_client=True) as client:
        for deployment_id in made:
            client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
            client.delete_deployment(deployment_id)


def _runs(deployment_id: Any) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def _run_with(deployment_id: Any, key: str, value: Any, timeout: float = 60.0) -> Any:
    runs = wait_for(
        lambda: [r for r in _runs(deployment_id) if r.parameters.get(key) == value],
        bool,
        timeout=timeout,
    )
    assert runs, (
        f"no run with {key}={value!r}; runs: {[r.parameters for r in _runs(deployment_id)]}"
    )
    return runs[0]


def _emit_until_run(emit: Any, deployment_id: Any, key: str, value: Any) -> Any:
    """Emit, then wait for the run; emit again every 10 s. The server's trigger service loads a
    new automation a moment after it is created, and an event before that matches nothing."""
    deadline = time.monotonic() + 90
    while True:
        emit()
        runs = wait_for(
            lambda: [r for r in _runs(deployment_id) if r.parameters.get(key) == value],
            bool,
            timeout=10,
        )
        if runs or time.monotonic() > deadline:
            break
    assert runs, (
        f"no run with {key}={value!r}; runs: {[r.parameters for r in _runs(deployment_id)]}"
    )
    return runs[0]


def test_breaker_opened_starts_recover_with_the_component_and_reason(
    deployed: Any, tmp_path: Path
) -> None:
    deployment_id = deployed(stand_in_recover, "recover")
    dep = Dependency(tmp_path / "dep")
    dep.down()
    policy = fast_policy(unique("serve-open"), failures=2, open_seconds=30)
    t = ft_task(call_dependency, breaker=policy)
    for x in range(2):
        with pytest.raises(ConnectionError):
            t.fn(dep.path, x)

    run = _run_with(deployment_id, "component", policy.name)
    assert run.parameters["failure_type"] is None  # not "": the decisions refuse ""
    assert run.parameters["reason"].startswith(f"breaker {policy.name} opened: ")
    assert "2 consecutive failures" in run.parameters["reason"], run.parameters
    assert run.parameters["skip_if_closed"] is True  # a late run leaves a moved-on breaker alone


def test_fault_detected_starts_recover_with_the_component_and_failure_type(
    deployed: Any,
) -> None:
    deployment_id = deployed(stand_in_recover, "recover")
    component = unique("serve-fault")
    now = time.time()
    alarm = Alarm(
        pattern=Pattern("burst"),
        components=(component, "downstream"),
        onset=now - 30,
        at=now,
        severity=Severity("HIGH"),
        failure_type=FailureType("ConnectionError"),
        score=9.5,
        explanation="12 failures in 60 s",
    )
    run = _emit_until_run(lambda: emit_alarm(alarm), deployment_id, "component", component)
    assert run.parameters["failure_type"] == "ConnectionError"
    assert run.parameters["reason"] == "HIGH burst detected: 12 failures in 60 s"


def test_breaker_closed_starts_replay_with_a_list_of_the_breaker(deployed: Any) -> None:
    deployment_id = deployed(stand_in_replay, "replay-dead-letters")
    name = unique("serve-closed")
    from prefect.events import emit_event

    resource = {"prefect.resource.id": f"prefect-ft.breaker.{name}", "prefect.resource.name": name}
    run = _emit_until_run(
        lambda: emit_event("prefect-ft.breaker.closed", resource=resource),
        deployment_id,
        "breakers",
        [name],
    )
    assert run.parameters == {"breakers": [name]}


def test_serving_twice_creates_no_duplicate_deployments_or_automations(monkeypatch) -> None:
    """`prefect-ft serve` applies every deployment; a second start replaces, never duplicates."""
    import sys

    from prefect.client.schemas.filters import DeploymentFilterName

    from prefect_ft.cli.serve import serve

    monkeypatch.chdir(ROOT)  # serve moves to the repository root; put the test back after
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("PREFECT_LOGGING_EXTRA_LOGGERS", "PREFECT_RUNNER_POLL_FREQUENCY"):
        monkeypatch.setenv(name, "")
    for _ in range(2):
        assert serve(root=ROOT, register_only=True, no_schedules=True) == 0

    with get_client(sync_client=True) as client:
        for d in DEPLOYMENTS:
            found = client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[d.name]))
            )
            assert len(found) == 1, (d.name, [f.id for f in found])
            owned = client.read_resource_related_automations(f"prefect.deployment.{found[0].id}")
            assert sorted(a.name for a in owned) == sorted(t["name"] for t in d.triggers)
            for trigger in d.triggers:
                assert len(client.read_automations_by_name(trigger["name"])) == 1
            assert all(not s.active for s in found[0].schedules)  # --no-schedules
