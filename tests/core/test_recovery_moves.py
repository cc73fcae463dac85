"""A recovery's outcome moves the breaker: pure transitions, then the driver on the memory store."""

from __future__ import annotations

import pytest

from prefect_ft import CircuitBreaker
from prefect_ft.core import BreakerConfig, BreakerRecord, ConsecutiveFailures, admit, on_outcome
from prefect_ft.core.machine import mark_recovered, mark_recovery_failed, set_overlay
from prefect_ft.exceptions import CircuitOpenError
from prefect_ft.stores import InMemoryBreakerStore
from tests.conftest import FakeClock


def cfg(**kw) -> BreakerConfig:
    kw.setdefault("trip", ConsecutiveFailures(1))
    kw.setdefault("open_seconds", 60.0)
    return BreakerConfig("dep", **kw)


def opened(c: BreakerConfig, now: float = 0.0) -> BreakerRecord:
    return on_outcome(BreakerRecord(), c, now, "failure").record


def test_recovered_half_opens_now_then_probe_and_ramp() -> None:
    c = cfg(recovery_seconds=30.0)
    r = opened(c)
    t = mark_recovered(r, c, 5.0)
    assert t.record.state == "HALF_OPEN" and t.record.open_until == 5.0
    assert [(e.kind, e.from_state, e.to_state) for e in t.events] == [
        ("half-opened", "OPEN", "HALF_OPEN")
    ]
    probe = admit(t.record, c, 5.1, "p1")
    assert probe.decision == "probe", "a probe runs long before the 60 s open time is over"
    after = on_outcome(probe.record, c, 5.2, "success", probe="p1").record
    assert after.state == "RECOVERY"  # the ramp, not a jump to CLOSED


def test_recovery_failed_keeps_open_for_the_longer_time_without_an_event() -> None:
    c = cfg()
    r = opened(c)
    t = mark_recovery_failed(r, c, 10.0, 300.0)
    assert t.record.state == "OPEN" and t.record.open_until == 310.0 and t.events == ()
    assert admit(t.record, c, 100.0, "h").decision == "reject"
    with pytest.raises(ValueError, match="open_seconds"):
        mark_recovery_failed(r, c, 0.0, float("nan"))


@pytest.mark.parametrize("move", ["recovered", "failed"])
def test_no_move_unless_open_and_never_over_an_overlay(move: str) -> None:
    c = cfg()

    def apply(rec: BreakerRecord):
        if move == "recovered":
            return mark_recovered(rec, c, 1.0)
        return mark_recovery_failed(rec, c, 1.0, 120.0)

    closed = BreakerRecord()
    forced = set_overlay(opened(c), "FORCED_OPEN", 0.5).record
    half = mark_recovered(opened(c), c, 0.7).record
    for rec in (closed, forced, half):
        t = apply(rec)
        assert t.record is rec and t.events == ()


def make(clock: FakeClock, store: InMemoryBreakerStore, **kw) -> CircuitBreaker:
    kw.setdefault("failure_threshold", 1)
    kw.setdefault("open_seconds", 60)
    return CircuitBreaker("dep", store=store, clock=clock, refresh_seconds=None, **kw)


def fail(b: CircuitBreaker) -> None:
    with pytest.raises(RuntimeError):
        b.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))


def test_breaker_mark_recovered_is_seen_by_every_process(clock: FakeClock) -> None:
    store = InMemoryBreakerStore(clock=clock)
    worker, recoverer = make(clock, store), make(clock, store)
    seen: list[str] = []
    recoverer.add_listener(lambda br, e: seen.append(e.kind))
    fail(worker)
    assert worker.state == "OPEN"
    clock.advance(2)
    move = recoverer.mark_recovered()  # its local view was CLOSED: it reads the store first
    assert move and move.state == "HALF_OPEN" and seen[-1] == "half-opened"
    worker.refresh()
    assert worker.call(lambda: 7) == 7  # the probe, 58 s before the open time would end
    assert worker.state == "CLOSED"  # recovery_seconds=0: the probe closes it


def test_breaker_mark_recovery_failed_extends_the_open_time(clock: FakeClock) -> None:
    store = InMemoryBreakerStore(clock=clock)
    worker, recoverer = make(clock, store), make(clock, store)
    fail(worker)
    clock.advance(10)
    move = recoverer.mark_recovery_failed(300)
    assert move and move.state == "OPEN"
    worker.refresh()
    clock.advance(100)  # past the usual 60 s
    with pytest.raises(CircuitOpenError) as info:
        worker.call(lambda: 1)
    assert info.value.retry_after == pytest.approx(200)
    with pytest.raises(ValueError, match="open_seconds"):
        recoverer.mark_recovery_failed(-1)


def test_breaker_moves_are_no_ops_with_a_reason(clock: FakeClock) -> None:
    store = InMemoryBreakerStore(clock=clock)
    b = make(clock, store)
    move = b.mark_recovered()
    assert not move and move.state == "CLOSED" and "not OPEN" in move.reason
    fail(b)
    b.force_open()
    for move in (b.mark_recovered(), b.mark_recovery_failed(100)):
        assert not move and move.state == "FORCED_OPEN" and "operator" in move.reason
