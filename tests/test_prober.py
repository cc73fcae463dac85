"""The active health check's driver (`recovery.prober`) on a real breaker: fake clock, then threads."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError
from prefect_ft.recovery.control import serve_control
from prefect_ft.recovery.prober import DeepHealth, run_check
from prefect_ft.stores.memory import InMemoryBreakerStore
from tests.conftest import FakeClock
from tests.waiting import DEADLINE_S, wait_until


class Component:
    """A dependency with a work call and a health check; counts what reaches it."""

    def __init__(self) -> None:
        self.down = False
        self.work = 0
        self.checks = 0

    def call(self) -> str:
        self.work += 1
        if self.down:
            raise ConnectionRefusedError("down")
        return "ok"

    def health(self) -> bool:
        self.checks += 1
        if self.down:
            raise ConnectionRefusedError("down")
        return True

    async def ahealth(self) -> dict[str, Any]:
        self.checks += 1
        return {"healthy": not self.down}


def make(comp: Component, flavour: str, clock: Any = None, **kw: Any) -> CircuitBreaker:
    fields: dict[str, Any] = {
        "failure_threshold": 8,
        "open_seconds": 5.0,
        "recovery_seconds": 0.0,
        "health_check": comp.health if flavour == "sync" else comp.ahealth,
        "probe_interval_seconds": 0.5,
        "probe_confirm_failures": 2,
    }
    fields.setdefault("store", "memory://")
    fields.update(kw)
    refresh = None if clock is not None else 0.05
    return CircuitBreaker("ipc", clock=clock, refresh_seconds=refresh, **fields)


def fail(b: CircuitBreaker, comp: Component, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ConnectionRefusedError):
            b.call(comp.call)


def test_a_confirming_check_trips_after_two_failures_not_eight(flavour: str, clock: FakeClock) -> None:  # fmt: skip
    comp = Component()
    b = make(comp, flavour, clock)
    events: list[Any] = []
    b.add_listener(lambda _, e: events.append(e))
    comp.down = True
    fail(b, comp, 1)
    assert b.health_prober.step() is None and comp.checks == 0  # one failure: no check yet
    fail(b, comp, 1)
    b.health_prober.step()
    assert comp.checks == 1 and b.state == "OPEN"
    assert [e.reason for e in events] == ["2 consecutive failure(s) and the health check failed"]
    with pytest.raises(CircuitOpenError):
        b.call(comp.call)
    assert comp.work == 2  # the preset would have sent 8


def test_failing_checks_keep_it_open_and_a_pass_half_opens_it_at_once(flavour: str, clock: FakeClock) -> None:  # fmt: skip
    comp = Component()
    b = make(comp, flavour, clock)
    comp.down = True
    fail(b, comp, 8)
    assert b.state == "OPEN" and comp.work == 8
    p = b.health_prober
    for _ in range(30):  # 15 s of outage, three times the open time
        assert p.step() == pytest.approx(0.5)
        clock.advance(0.5)
        with pytest.raises(CircuitOpenError):
            b.call(comp.call)
    assert comp.work == 8 and comp.checks == 30  # no work call while it stays down
    comp.down = False
    assert p.step() is None  # passed: HALF_OPEN, nothing more to check
    assert b.state == "HALF_OPEN"
    assert b.call(comp.call) == "ok"
    assert b.state == "CLOSED"


def test_a_passing_confirming_check_does_not_trip(flavour: str, clock: FakeClock) -> None:
    comp = Component()
    b = make(comp, flavour, clock)
    comp.down = True
    fail(b, comp, 3)
    comp.down = False  # a partial error burst: the component answers its check
    b.health_prober.step()
    assert b.state == "CLOSED" and comp.checks == 1
    comp.down = True
    fail(b, comp, 1)
    assert b.health_prober.step() == pytest.approx(0.5)  # at most one confirming check per interval
    assert comp.checks == 1
    clock.advance(0.5)
    b.health_prober.step()
    assert comp.checks == 2 and b.state == "OPEN"


def test_without_a_health_check_nothing_probes(clock: FakeClock) -> None:
    b = CircuitBreaker("ipc", store="memory://", clock=clock, refresh_seconds=None, probe_interval_seconds=0.5)  # fmt: skip
    assert b.health_prober is None


def test_run_check_answers() -> None:
    def boom() -> None:
        raise OSError("refused")

    assert run_check(lambda: None) and not run_check(boom) and not run_check(lambda: False)


class Served:
    def __init__(self) -> None:
        self.healthy = False

    def health(self, deep: bool) -> dict[str, Any]:
        return {"healthy": self.healthy, "reason": "model not loaded"}


def test_deep_health_asks_the_control_channel() -> None:
    served = Served()
    with serve_control(served) as server:
        check = DeepHealth(server.url, timeout=5.0)
        assert not run_check(check)
        served.healthy = True
        assert run_check(check)
    assert not run_check(check)  # the server is gone: refused
    assert DeepHealth(server.url, 5.0) == check  # equal by URL: a re-resolved policy is the same


@pytest.mark.parametrize("run", range(20))
def test_the_thread_reopens_the_path_soon_after_the_fault_and_then_ends(run: int) -> None:
    comp = Component()
    # Its own store: a breaker left OPEN by one run must not be read by the next (CI once saw
    # one slow run fail and the next seven inherit its open breaker from the shared memory://).
    b = make(comp, "sync", probe_interval_seconds=0.02, open_seconds=30.0, store=InMemoryBreakerStore())  # fmt: skip
    try:
        comp.down = True
        fail(b, comp, 2)  # the confirming check runs on the prober's thread
        assert wait_until(lambda: b.state == "OPEN") and comp.work == 2
        assert wait_until(lambda: comp.checks >= 2)  # it keeps checking while down
        comp.down = False
        assert wait_until(lambda: b.state == "HALF_OPEN")  # within a few intervals, not after 30 s
        assert b.call(comp.call) == "ok" and b.state == "CLOSED"
        b.health_prober.join(DEADLINE_S)
        assert b.health_prober._thread is None  # nothing to check: the thread ended
    finally:
        comp.down = False  # a failed run must not leave a checking thread behind


def test_the_block_sets_probing_and_a_component_spec_checks_its_control_endpoint() -> None:
    from pydantic import ValidationError

    from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec
    from prefect_ft.tasks.policy_sources import _from_document

    block = CircuitBreakerPolicy(probe_interval_seconds=0.5, probe_confirm_failures=2)
    config = block.to_config("ipc")
    assert (config.probe_interval_seconds, config.probe_confirm_failures) == (0.5, 2)
    assert config.health_check is None and not config.probing  # no endpoint: nothing to ask
    for field, bad in (("probe_interval_seconds", 0), ("probe_confirm_failures", 0)):
        with pytest.raises(ValidationError, match=field):
            CircuitBreakerPolicy(**{field: bad})
    spec = ComponentSpec(component="ipc", breaker=block, control_endpoint="http://127.0.0.1:9/c")
    policy = _from_document(ComponentSpec, "ipc", spec.model_dump())
    assert policy.breaker.health_check == DeepHealth("http://127.0.0.1:9/c")
    assert policy.breaker.probing
    plain = ComponentSpec(component="ipc", breaker=CircuitBreakerPolicy(), control_endpoint="http://127.0.0.1:9/c")  # fmt: skip
    assert _from_document(ComponentSpec, "ipc", plain.model_dump()).breaker.health_check is None
