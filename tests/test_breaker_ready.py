"""Readiness push and probe backoff on a real breaker (`CircuitBreaker.ready`, `announce_ready`,
`recovery.prober`): fake clock, the prober stepped by hand."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError, announce_ready
from prefect_ft.recovery.readiness import _announce_in_store
from tests.conftest import FakeClock
from tests.test_prober import Component, fail, make

READY = {"probe_backoff": 2.0, "probe_max_interval_seconds": 10.0, "ready_recovery_seconds": 0.0}


def test_backoff_spaces_the_checks_of_a_long_outage(flavour: str, clock: FakeClock) -> None:
    comp = Component()
    b = make(comp, flavour, clock, **READY)
    comp.down = True
    fail(b, comp, 2)  # the confirming check after 2 failures opens it (check 1)
    p = b.health_prober
    p.step()
    assert b.state == "OPEN" and comp.checks == 1
    delays = []
    while clock.t < 1000.0 + 25.0:
        delay = p.step()
        assert delay is not None
        delays.append(round(delay, 6))
        clock.advance(delay)
    assert delays[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert comp.checks <= 7 and comp.work == 2  # 50 checks at a fixed 0.5 s


def test_ready_verifies_at_once_and_closes_after_one_work_probe(flavour: str, clock: FakeClock) -> None:  # fmt: skip
    comp = Component()
    b = make(comp, flavour, clock, **READY, recovery_seconds=2.0)
    events: list[Any] = []
    b.add_listener(lambda _, e: events.append(e.kind))
    comp.down = True
    fail(b, comp, 2)
    p = b.health_prober
    for _ in range(5):
        clock.advance(p.step() or 0.0)
    assert p.step() >= 4.0  # backed off: the next check is seconds away
    comp.down = False
    assert b.ready()  # the announcement is recorded; the state is still OPEN
    assert b.state == "OPEN" and b.record.ready_at == pytest.approx(clock.t)
    checks = comp.checks
    assert p.step() is None  # due at once: checked, passed, half-open
    assert comp.checks == checks + 1 and b.state == "HALF_OPEN"
    with b:  # this block is the one half-open work probe: nothing else gets through meanwhile
        with pytest.raises(CircuitOpenError):
            b.call(comp.call)
        comp.call()
    assert b.state == "CLOSED"  # ready_recovery_seconds=0: no 2 s ramp after a verified return
    assert b.call(comp.call) == "ok"
    assert events[-2:] == ["half-opened", "closed"]


def test_ready_while_still_down_is_dropped_by_the_failed_check(clock: FakeClock) -> None:
    comp = Component()
    b = make(comp, "sync", clock, **READY)
    comp.down = True
    fail(b, comp, 2)
    b.health_prober.step()
    b.ready()  # a supervisor that announced too early
    clock.advance(0.01)
    b.health_prober.step()
    assert b.state == "OPEN" and b.record.ready_at is None


def test_ready_on_a_closed_breaker_changes_nothing(clock: FakeClock) -> None:
    b = make(Component(), "sync", clock, **READY)
    move = b.ready()
    assert not move and move.reason == "the breaker is CLOSED, not OPEN; nothing to move"


def test_without_a_health_check_ready_half_opens_now(clock: FakeClock) -> None:
    b = CircuitBreaker("plain", store="memory://", clock=clock, refresh_seconds=None, failure_threshold=1, recovery_seconds=2.0)  # fmt: skip
    with pytest.raises(ConnectionRefusedError):
        b.call(_down().call)
    assert b.state == "OPEN"
    assert b.ready() and b.state == "HALF_OPEN"


def _down() -> Component:
    comp = Component()
    comp.down = True
    return comp


def test_an_announcement_in_the_store_reaches_another_breakers_prober(clock: FakeClock) -> None:
    comp = Component()
    b = make(comp, "sync", clock, **READY)
    comp.down = True
    fail(b, comp, 2)
    b.health_prober.step()
    comp.down = False
    assert _announce_in_store(b.store, "ipc")  # what another process's announce_ready writes
    checks = comp.checks
    b.refresh()  # this process's refresher adopts it and wakes the prober
    assert b.health_prober.step() is None
    assert comp.checks == checks + 1 and b.state == "HALF_OPEN"
    assert not _announce_in_store(b.store, "ipc")  # not OPEN any more: nothing to write
    assert not _announce_in_store(b.store, "never-built")


def test_announce_ready_tells_the_live_breakers_and_checks_its_argument(clock: FakeClock) -> None:
    comp = Component()
    b = make(comp, "sync", clock, **READY)
    comp.down = True
    fail(b, comp, 2)
    b.health_prober.step()
    assert announce_ready("ipc", store=b.store)
    assert b.record.ready_at is not None
    with pytest.raises(ValueError, match="name must be a non-empty breaker name"):
        announce_ready("  ")
