"""A served `recover` of a component that has no control channel (the demo's quality-validation):
there is nothing a recovery can act on, so the run is a skip ("refused": nothing to recover), not a
failure; the breaker's open time and the dead-letter replay carry the component back."""

from __future__ import annotations

import asyncio

from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec
from prefect_ft.recovery.executor import RecoveryOptions, arecover
from prefect_ft.stores.memory import InMemoryBreakerStore
from tests.conftest import FakeClock


def _spec(name: str) -> ComponentSpec:
    return ComponentSpec(
        component=name,
        breaker=CircuitBreakerPolicy(failure_threshold=1, open_seconds=10),
        control_endpoint=None,
    )


def test_recover_without_control_endpoint_is_nothing_to_recover() -> None:
    clock = FakeClock()
    events: list[str] = []

    def emit(kind, component, recovery_id, phase, payload) -> str:
        events.append(kind)
        return f"prefect-ft.recovery.{kind}"

    options = RecoveryOptions(store=InMemoryBreakerStore(clock=clock), clock=clock, emit=emit)
    report = asyncio.run(arecover("qv-no-control", spec=_spec("qv-no-control"), options=options))
    assert report.outcome == "refused", report.message
    assert "nothing to recover" in report.message
    assert "no control_endpoint" in report.message
    assert "failed" not in events  # a skip sends no prefect-ft.recovery.failed
