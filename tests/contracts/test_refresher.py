"""The refresher: one thread per store, gone with the store's last breaker (issue 8 item 13)."""

from __future__ import annotations

import gc
import threading
import time

from prefect_ft import CircuitBreaker
from prefect_ft.stores import InMemoryBreakerStore
from tests.waiting import wait_until


def _refresher_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("prefect-ft-refresher")}


def test_dropped_breakers_leave_no_threads_behind() -> None:
    gc.collect()
    baseline = threading.active_count()
    for i in range(200):
        b = CircuitBreaker(f"leak-{i}", store=InMemoryBreakerStore(), refresh_seconds=0.01)
        assert b.call(lambda: 1) == 1
        del b
    gc.collect()
    assert wait_until(lambda: threading.active_count() <= baseline + 2), (
        f"{threading.active_count() - baseline} threads left behind"
    )


def test_breakers_of_one_store_share_one_refresher() -> None:
    before = _refresher_threads()
    store = InMemoryBreakerStore()
    breakers = [CircuitBreaker(f"share-{i}", store=store, refresh_seconds=0.05) for i in range(20)]
    started = _refresher_threads() - before
    assert len(started) == 1
    del breakers
    gc.collect()
    assert wait_until(lambda: not any(t.is_alive() for t in started))


def test_a_live_breaker_keeps_refreshing_while_others_go() -> None:
    before = _refresher_threads()
    store = InMemoryBreakerStore()
    alive = CircuitBreaker("live", store=store, refresh_seconds=0.01)
    for i in range(20):  # neighbours on the same store come and go
        CircuitBreaker(f"gone-{i}", store=store, refresh_seconds=0.01)
    gc.collect()
    time.sleep(0.05)
    operator = CircuitBreaker("live", store=store, refresh_seconds=None)
    operator.force_open()
    assert wait_until(lambda: alive.state == "FORCED_OPEN")
    # the last breaker gone stops the thread; a new breaker on the same store starts one again
    started = _refresher_threads() - before
    assert len(started) == 1
    alive = operator = None  # type: ignore[assignment]
    gc.collect()
    assert wait_until(lambda: not any(t.is_alive() for t in started))
    again = CircuitBreaker("live", store=store, refresh_seconds=0.01)
    CircuitBreaker("live", store=store, refresh_seconds=None).clear_overlay()
    assert wait_until(lambda: again.state == "CLOSED")
