"""Prefect events for breaker transitions, refusals and published states, read back from the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefect_ft.breaker import CircuitBreaker
from prefect_ft.core.events import BreakerEvent
from prefect_ft.tasks import events as prefect_events
from prefect_ft.tasks.decorator import ft_task
from prefect_ft.tasks.events import breaker_resource_id
from prefect_ft.tasks.gates import gate_for
from tests.prefect.helpers import Dependency, call_dependency, events, fast_policy, unique, wait_for


@pytest.fixture
def dep(tmp_path: Path) -> Dependency:
    d = Dependency(tmp_path / "dep")
    d.down()
    return d


def test_transitions_refusals_and_state_are_announced(dep: Dependency) -> None:
    policy = fast_policy(unique("events"), failures=2, open_seconds=30)
    t = ft_task(call_dependency, breaker=policy)
    rid = breaker_resource_id(policy.name)
    for x in range(2):
        with pytest.raises(ConnectionError):
            t.fn(dep.path, x)
    refused = t.fn(dep.path, 2)  # outside a flow the guard returns the state
    assert refused.name == "CircuitOpen"

    published = wait_for(lambda: events(prefect_events.STATE_EVENT, rid), bool)
    assert [e.resource["prefect-ft.state"] for e in published] == ["CLOSED"]

    opened = wait_for(lambda: events("prefect-ft.breaker.opened", rid), bool)
    assert len(opened) == 1
    event = opened[0]
    assert event.resource["prefect-ft.state"] == "OPEN"
    assert event.payload["from_state"] == "CLOSED" and event.payload["to_state"] == "OPEN"
    assert event.payload["open_seconds"] == pytest.approx(30, rel=0.01)
    assert event.payload["retry_after"] == event.payload["open_seconds"]
    assert event.payload["reason"]
    roles = {r.id: r.role for r in event.related}
    assert roles[rid] == "breaker"
    assert roles[f"prefect-ft.component.{policy.name}"] == "component"

    rejected = wait_for(lambda: events("prefect-ft.breaker.rejected", rid), bool)
    assert len(rejected) == 1
    assert rejected[0].payload["rejected_by"] == "breaker"
    assert 0 < rejected[0].payload["retry_after"] <= 30
    assert rejected[0].payload["dead_letter"] == f"{policy.name}/1"


def test_a_transition_is_announced_by_the_process_that_made_it_only(dep: Dependency) -> None:
    policy = fast_policy(unique("remote"), failures=1, open_seconds=30)
    here = gate_for(policy).breaker  # registered: events installed
    # another process's breaker on the same store (refresh driven by hand)
    there = CircuitBreaker(policy.breaker, store=here.store, refresh_seconds=None)
    with pytest.raises(ConnectionError):
        there.call(call_dependency, dep.path, 1)
    assert there.state == "OPEN"
    seen: list[BreakerEvent] = []
    here.add_listener(lambda b, e: seen.append(e))
    here.refresh()
    assert here.state == "OPEN" and seen and seen[0].remote  # observed, not made, here
    rid = breaker_resource_id(policy.name)
    assert wait_for(lambda: events("prefect-ft.breaker.opened", rid), bool)
    opened = wait_for(lambda: events("prefect-ft.breaker.opened", rid), lambda es: len(es) > 1, 3)
    assert len(opened) == 1  # from `there` only


class _Broken:
    @property
    def name(self) -> str:
        raise RuntimeError("no name")

    def __getattr__(self, item: str) -> Any:
        raise RuntimeError(item)


def test_emitting_never_raises() -> None:
    event = BreakerEvent("opened", "CLOSED", "OPEN", 0.0, "test", 5.0)
    prefect_events.on_transition(_Broken(), event)  # type: ignore[arg-type]
    prefect_events.publish_state(_Broken())  # type: ignore[arg-type]
    prefect_events.emit_rejected(_Broken(), ValueError("x"), rejected_by="breaker")  # type: ignore[arg-type]
