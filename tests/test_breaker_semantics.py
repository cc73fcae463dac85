"""Issue 8 items 1, 4, 5 and 14 through the `CircuitBreaker` driver (fake clock, memory store)."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError
from prefect_ft.bulkhead.permits import Bulkhead
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.exceptions import BulkheadFullError
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
