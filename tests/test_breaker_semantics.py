"""Issue 8 items 1, 4, 5 and 14 through the `CircuitBreaker` driver (fake clock, memory store)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError, FailureRate, SlowCallRate
from prefect_ft.bulkhead.permits import Bulkhead
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.exceptions import BulkheadFullError
from prefect_ft.stores import InMemoryBreakerStore
from tests.conftest import FakeClock


def breaker(clock: FakeClock, store: Any = "memory://", **kw: Any) -> CircuitBreaker:
    if "trip" not in kw:
        kw.setdefault("failure_threshold", 3)
    kw.setdefault("open_seconds", 10)
    return CircuitBreaker("dep", store=store, clock=clock, refresh_seconds=None, **kw)


def fail(b: CircuitBreaker, exc: BaseException | None = None) -> None:
    err = exc or ConnectionError("down")
    with pytest.raises(type(err)):
        b.call(lambda: (_ for _ in ()).throw(err))


def rate_breaker(clock: FakeClock, store: Any = "memory://") -> CircuitBreaker:
    return breaker(clock, store, trip=FailureRate(50, minimum_calls=4), window_size=4)


# -- item 1: a fresh window on every transition ------------------------------------------------
def test_a_rate_tripped_breaker_does_not_trip_again_after_recovering(clock: FakeClock) -> None:
    """The issue's repro: 2 successes + 2 failures -> OPEN; probe ok -> CLOSED; 1 success."""
    b = rate_breaker(clock)
    b.call(lambda: None)
    b.call(lambda: None)
    fail(b)
    fail(b)
    assert b.state == "OPEN" and b.record.trips == 1
    clock.advance(10)
    b.call(lambda: None)  # the probe
    assert b.state == "CLOSED"
    assert b.window_counts().calls == 0
    b.call(lambda: None)
    assert b.state == "CLOSED" and b.record.trips == 1


def test_a_slow_call_breaker_starts_afresh_after_recovering(clock: FakeClock) -> None:
    b = breaker(clock, trip=SlowCallRate(50, slow_seconds=2, minimum_calls=2), window_size=4)

    def slow() -> None:
        clock.advance(3)

    b.call(slow)
    b.call(slow)
    assert b.state == "OPEN"
    clock.advance(10)
    b.call(lambda: None)
    assert b.state == "CLOSED" and b.window_counts().calls == 0
    b.call(slow)  # one slow call of one: under minimum_calls in the fresh window
    assert b.state == "CLOSED"


def test_every_process_starts_a_fresh_window_on_a_transition_it_adopts(clock: FakeClock) -> None:
    store = InMemoryBreakerStore(clock=clock, url="memory://")
    here, there = rate_breaker(clock, store), rate_breaker(clock, store)
    here.call(lambda: None)
    fail(here)
    assert here.window_counts().calls == 2
    # the other process trips, probes and closes the breaker while this one is not looking
    for _ in range(4):
        fail(there)
    assert there.state == "OPEN"
    clock.advance(10)
    there.call(lambda: None)
    assert there.state == "CLOSED"
    here.refresh()
    assert here.state == "CLOSED" and here.window_counts().calls == 0
    here.call(lambda: None)
    fail(here)
    assert here.state == "CLOSED"  # 1 of 2: below minimum_calls, not the stale 3 of 4


def test_an_operator_reset_elsewhere_empties_this_process_window(clock: FakeClock) -> None:
    store = InMemoryBreakerStore(clock=clock, url="memory://")
    here, cli = rate_breaker(clock, store), rate_breaker(clock, store)
    fail(here)
    fail(here)
    assert here.state == "CLOSED" and here.window_counts().failures == 2
    clock.advance(1)
    cli.reset()
    here.refresh()
    assert here.window_counts().calls == 0


def test_a_call_admitted_before_a_trip_does_not_land_in_the_next_window(clock: FakeClock) -> None:
    b = rate_breaker(clock)
    overhanging = b._enter()  # started while CLOSED, answers after the breaker recovered
    b.call(lambda: None)
    fail(b)
    fail(b)
    fail(b)
    assert b.state == "OPEN"
    clock.advance(10)
    b.call(lambda: None)
    assert b.state == "CLOSED"
    b._exit_error(overhanging, ConnectionError("late"))
    assert b.window_counts().calls == 0


# -- item 4: a late probe failure reopens; HALF_OPEN is bounded ---------------------------------
def test_a_probe_that_outlives_its_lease_still_reopens_on_failure(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1, probe_ttl_seconds=5)
    fail(b)
    clock.advance(10)
    slow_probe = b._enter()  # a long model call holding the only probe lease
    assert b.state == "HALF_OPEN"
    clock.advance(6)  # the lease expired: the next call gets a probe of its own
    next_probe = b._enter()
    assert b.state == "HALF_OPEN"
    b._exit_error(slow_probe, ConnectionError("timed out after 6 s"))
    assert b.state == "OPEN" and b.record.trips == 2
    b._exit_ok(next_probe)  # an overhanging answer from the superseded episode
    assert b.state == "OPEN"


def test_half_open_reopens_when_no_probe_answers_in_time(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1, probe_ttl_seconds=5)
    fail(b)
    clock.advance(10)
    hanging = [b._enter()]
    started = b.now()
    rejected = 0
    while b.state == "HALF_OPEN":  # steady traffic; every probe hangs
        assert b.now() < started + 10
        clock.advance(0.5)
        try:
            hanging.append(b._enter())
        except CircuitOpenError:
            rejected += 1
    assert b.state == "OPEN" and b.now() == pytest.approx(started + 10)
    assert len(hanging) == 2 and rejected > 0


# -- item 5: Retry-After --------------------------------------------------------------------
class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429, retry after {retry_after}")
        self.retry_after = retry_after


def stored(b: CircuitBreaker) -> str:
    return b.store.read(b.key).data or ""


def test_a_day_long_retry_after_is_capped_at_max_open_seconds(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1, max_open_seconds=120)
    fail(b, Throttled(86400))
    assert b.state == "OPEN" and b.record.open_until - b.now() == pytest.approx(120)


@pytest.mark.parametrize("hint", [math.inf, math.nan])
def test_a_non_finite_retry_after_is_ignored_and_never_stored(
    clock: FakeClock, hint: float
) -> None:
    b = breaker(clock, failure_threshold=1)
    fail(b, Throttled(hint))
    assert b.state == "OPEN" and b.record.open_until - b.now() == pytest.approx(10)
    text = stored(b)
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["open_until"] == pytest.approx(b.record.open_until)


def test_one_retry_after_does_not_open_below_the_threshold(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=3)
    fail(b, Throttled(30))
    assert b.state == "CLOSED"
    fail(b)
    fail(b, Throttled(30))
    assert b.state == "OPEN" and b.record.open_until - b.now() == pytest.approx(30)


# -- item 14: nested rejections are not the outer dependency's fault ---------------------------
def full_bulkhead(name: str) -> Bulkhead:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=0))
    return bh


async def test_a_nested_bulkhead_rejection_is_ignored(flavour: str, clock: FakeClock) -> None:
    outer = breaker(clock, failure_threshold=1)
    inner = full_bulkhead(f"inner-{flavour}")
    if flavour == "sync":
        with inner.permit():  # the only permit is taken

            @outer
            def guarded() -> None:
                with inner.permit():
                    pass

            with pytest.raises(BulkheadFullError):
                guarded()
    else:
        async with inner.apermit():

            @outer
            async def aguarded() -> None:
                async with inner.apermit():
                    pass

            with pytest.raises(BulkheadFullError):
                await aguarded()
    assert outer.state == "CLOSED" and outer.record.consecutive_failures == 0
    assert outer.counts["ignored"] == 1 and outer.counts["failed"] == 0


async def test_a_nested_breaker_rejection_is_ignored(flavour: str, clock: FakeClock) -> None:
    outer = breaker(clock, failure_threshold=1)
    inner = CircuitBreaker("inner", store="memory://", clock=clock, refresh_seconds=None)
    inner.force_open()
    if flavour == "sync":
        with pytest.raises(CircuitOpenError):
            outer.call(inner.call, lambda: None)
    else:

        async def ok() -> None:
            return None

        with pytest.raises(CircuitOpenError):
            await outer.acall(inner.acall, ok)
    assert outer.state == "CLOSED" and outer.counts["ignored"] == 1


def test_a_nested_bulkhead_rejection_does_not_use_up_a_probe(clock: FakeClock) -> None:
    outer = breaker(clock, failure_threshold=1)
    fail(outer)
    clock.advance(10)
    inner = full_bulkhead("inner-probe")
    with inner.permit(), pytest.raises(BulkheadFullError), outer, inner.permit():
        pass
    assert outer.state == "HALF_OPEN"
    outer.call(lambda: None)  # the slot was handed back: this call is the probe
    assert outer.state == "CLOSED"
