"""Bulkheads in one process: the limit across threads and event loops, waits, queue, leases.

Shared-scope behaviour is driven through a `memory://` store on a fake clock; other processes
are simulated by writing their leases into the record. Real processes are in
tests/contracts/test_bulkhead_processes.py.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefect_ft.bulkhead.permits import Bulkhead, GlobalConcurrencyBulkhead
from prefect_ft.core import bulkhead as core
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.exceptions import BulkheadFullError, ConfigurationError, StoreUnavailableError
from prefect_ft.stores import InMemoryBreakerStore
from tests.waiting import DEADLINE_S, wait_until

_names = itertools.count()


@pytest.fixture
def name() -> str:
    """A bulkhead name of this test only (bulkheads of one name share one count per process)."""
    return f"bh-{next(_names)}"


class Occupancy:
    """Counts callers inside the protected section; remembers the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


# -- scope "process" ---------------------------------------------------------------------------


def test_twenty_threads_never_exceed_max_concurrent(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=4, max_wait_seconds=30))
    # the barrier trips only with 4 inside
    inside, barrier = Occupancy(), threading.Barrier(4, timeout=DEADLINE_S)

    def call() -> None:
        with bh.permit(), inside:
            barrier.wait()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside.most == 4
    assert not barrier.broken
    assert bh.available == 4


async def test_twenty_tasks_never_exceed_max_concurrent(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=4, max_wait_seconds=30))
    inside, barrier = Occupancy(), asyncio.Barrier(4)

    async def call() -> None:
        async with bh.apermit():
            with inside:
                await asyncio.wait_for(barrier.wait(), DEADLINE_S)

    await asyncio.gather(*(call() for _ in range(20)))
    assert inside.most == 4
    assert bh.available == 4


def test_threads_and_two_event_loops_share_one_limit(name: str) -> None:
    # Prefect runs each async task with asyncio.run in a worker thread: one limit must span all.
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=4, max_wait_seconds=30))
    inside, barrier = Occupancy(), threading.Barrier(4, timeout=DEADLINE_S)
    kinds: list[str] = []

    def held(kind: str) -> None:
        with inside.lock:
            kinds.append(kind)

    def sync_call() -> None:
        with bh.permit(), inside:
            held("thread")
            barrier.wait()

    async def async_call(loop_name: str) -> None:
        async with bh.apermit():
            with inside:
                held(loop_name)
                await asyncio.to_thread(barrier.wait)  # never block this loop's other waiters

    async def many(loop_name: str) -> None:
        await asyncio.gather(*(async_call(loop_name) for _ in range(6)))

    threads = [threading.Thread(target=sync_call) for _ in range(8)]
    threads += [threading.Thread(target=asyncio.run, args=(many(n),)) for n in ("loop-a", "loop-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside.most == 4
    assert sorted(kinds) == ["loop-a"] * 6 + ["loop-b"] * 6 + ["thread"] * 8
    assert bh.available == 4 and bh.waiting == 0


async def test_an_async_waiter_does_not_block_its_event_loop(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=30))
    taken, release = threading.Event(), threading.Event()

    def holder() -> None:
        with bh.permit():
            taken.set()
            release.wait(DEADLINE_S)

    thread = threading.Thread(target=holder)
    thread.start()
    taken.wait(DEADLINE_S)
    permit = bh.apermit()  # kept: a dropped context manager would release on collection
    waiter = asyncio.create_task(permit.__aenter__())
    ticks = 0
    while bh.waiting == 0 or ticks < 20:  # the loop keeps running other work meanwhile
        await asyncio.sleep(0)
        ticks += 1
    assert not waiter.done()
    release.set()
    await asyncio.wait_for(waiter, DEADLINE_S)
    assert bh.available == 0
    await permit.__aexit__(None, None, None)
    assert bh.available == 1
    thread.join()


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_waiter_gets_the_permit_when_it_is_released(name: str, flavour: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=30))
    got: list[str] = []

    def sync_waiter() -> None:
        with bh.permit():
            got.append("sync")

    async def async_waiter() -> None:
        async with bh.apermit():
            got.append("async")

    with bh.permit():
        if flavour == "sync":
            thread = threading.Thread(target=sync_waiter)
            thread.start()
        else:
            thread = threading.Thread(target=asyncio.run, args=(async_waiter(),))
            thread.start()
        assert wait_until(lambda: bh.waiting == 1)
        assert got == []
    thread.join(DEADLINE_S)
    assert got == [flavour]
    assert bh.available == 1


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_waiter_gives_up_after_max_wait(name: str, flavour: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=0.05))
    with bh.permit(), pytest.raises(BulkheadFullError) as err:
        if flavour == "sync":
            with bh.permit():
                pass
        else:
            async with bh.apermit():
                pass
    assert (err.value.bulkhead, err.value.max_concurrent) == (name, 1)
    assert err.value.waited >= 0.05 * 0.95  # timers may fire a hair early
    assert bh.waiting == 0 and bh.available == 1


def test_by_default_a_full_bulkhead_queues_for_a_bounded_time(name: str) -> None:
    # A .map() over more items than max_concurrent must queue the surplus, not refuse it (issue 8
    # item 16), yet never wait forever: the default wait is finite and the queue length is open.
    config = BulkheadConfig(name, max_concurrent=1)
    assert 0 < config.max_wait_seconds <= 600 and config.max_queue is None
    bh = Bulkhead(config)
    got: list[str] = []

    def second() -> None:
        with bh.permit():
            got.append("second")

    with bh.permit():
        thread = threading.Thread(target=second)
        thread.start()
        assert wait_until(lambda: bh.waiting == 1)
    thread.join(DEADLINE_S)
    assert got == ["second"] and bh.available == 1


def test_without_a_wait_budget_a_full_bulkhead_refuses(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=2, max_wait_seconds=0))
    with bh.permit(), bh.permit(), pytest.raises(BulkheadFullError), bh.permit():
        pass
    with bh.permit():  # the refused call took nothing
        assert bh.available == 1


async def test_a_full_queue_refuses_at_once(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=30, max_queue=1))
    done = threading.Event()

    def queued() -> None:
        with bh.permit():
            done.set()

    with bh.permit():
        thread = threading.Thread(target=queued)
        thread.start()
        assert wait_until(lambda: bh.waiting == 1)
        for attempt in (bh.permit(), bh.apermit()):
            with pytest.raises(BulkheadFullError) as err:
                if hasattr(attempt, "__aenter__"):
                    await attempt.__aenter__()
                else:
                    attempt.__enter__()
            assert err.value.waited < 30  # refused, not timed out
        assert bh.waiting == 1
    thread.join(DEADLINE_S)
    assert done.is_set()


def test_waiters_are_served_in_arrival_order(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=30))
    order: list[int] = []

    def waiter(i: int) -> None:
        with bh.permit():
            order.append(i)

    threads = []
    with bh.permit():
        for i in range(5):
            threads.append(threading.Thread(target=waiter, args=(i,)))
            threads[-1].start()
            assert wait_until(lambda i=i: bh.waiting == i + 1)
    for t in threads:
        t.join(DEADLINE_S)
    assert order == [0, 1, 2, 3, 4]


async def test_a_cancelled_async_waiter_leaves_no_permit_behind(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=30))
    with bh.permit():
        permit = bh.apermit()
        task = asyncio.create_task(permit.__aenter__())
        while bh.waiting == 0:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bh.waiting == 0
    assert bh.available == 1


def test_an_error_in_the_body_releases_the_permit(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1))
    with pytest.raises(KeyError), bh.permit():
        raise KeyError("boom")
    assert bh.available == 1


def test_bulkheads_of_one_name_share_one_count(name: str) -> None:
    first = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=0))
    rebuilt = pickle.loads(pickle.dumps(first))  # as a process-pool runner would ship it
    with first.permit(), pytest.raises(BulkheadFullError), rebuilt.permit():
        pass
    assert Bulkhead(BulkheadConfig(name, max_concurrent=3)).available == 3  # newest limit wins


# -- decorator ---------------------------------------------------------------------------------


def _double(x: int) -> int:
    return 2 * x


def test_the_decorator_keeps_signatures_and_limits_calls(name: str) -> None:
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=0))

    def parse(doc_id: str, *, pages: int = 1) -> str:
        """Parse one document."""
        with pytest.raises(BulkheadFullError):
            wrapped(doc_id)  # re-entry while the only permit is held
        return f"{doc_id}:{pages}"

    async def score(record: dict[str, Any]) -> float:
        """Score one record."""
        return 1.0

    wrapped, awrapped = bh(parse), bh(score)
    for original, w in ((parse, wrapped), (score, awrapped)):
        assert inspect.signature(w) == inspect.signature(original)
        assert (w.__name__, w.__doc__) == (original.__name__, original.__doc__)
        assert inspect.iscoroutinefunction(w) == inspect.iscoroutinefunction(original)
        assert w.bulkhead is bh  # type: ignore[attr-defined]
    assert wrapped("d1", pages=3) == "d1:3"
    assert asyncio.run(awrapped({})) == 1.0
    shipped = cloudpickle.loads(cloudpickle.dumps(bh(_double)))  # process-pool runners do this
    assert shipped(2) == 4 and shipped.bulkhead.name == name


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("name", {"name": ""}),
        ("max_concurrent", {"max_concurrent": 0}),
        ("max_concurrent", {"max_concurrent": True}),
        ("max_concurrent", {"max_concurrent": 2.5}),
        ("max_wait_seconds", {"max_wait_seconds": -1}),
        ("max_wait_seconds", {"max_wait_seconds": float("inf")}),
        ("max_queue", {"max_queue": -1}),
        ("max_queue", {"max_queue": True}),
        ("scope", {"scope": "cluster"}),
        ("lease_seconds", {"lease_seconds": 0}),
        ("lease_seconds", {"lease_seconds": float("nan")}),
    ],
)
def test_bad_config_names_the_field(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=f"^{field} must be"):
        BulkheadConfig(**{"name": "x", **kwargs})


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("limit_name", {"limit_name": ""}),
        ("occupy", {"occupy": 0}),
        ("max_wait_seconds", {"max_wait_seconds": -1}),
        ("lease_seconds", {"lease_seconds": 10}),
    ],
)
def test_bad_global_limit_arguments_name_the_field(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=f"^{field} must be"):
        GlobalConcurrencyBulkhead(**{"limit_name": "x", **kwargs})


def test_a_bulkhead_needs_a_config_object() -> None:
    with pytest.raises(TypeError, match="BulkheadConfig"):
        Bulkhead("ipc")  # type: ignore[arg-type]


# -- scope "shared" (store leases) -------------------------------------------------------------


class FlakyStore(InMemoryBreakerStore):
    """A memory store that can be switched off."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("switched off")

    def read(self, key: str) -> Any:
        self._check()
        return super().read(key)

    def cas(self, key: str, expected_version: int, data: str) -> Any:
        self._check()
        return super().cas(key, expected_version, data)


@pytest.fixture
def store(clock: Callable[[], float]) -> Iterator[FlakyStore]:
    made = FlakyStore(clock)
    yield made
    made.close()


def leases(store: InMemoryBreakerStore, name: str) -> tuple[core.Lease, ...]:
    return core.live_leases(
        core.decode_leases(store.read(f"prefect-ft:bulkhead:{name}").data), store.time()
    )


def foreign(
    store: InMemoryBreakerStore, name: str, holder: str, seconds: float, max_concurrent: int = 2
) -> bool:
    """Another process takes a lease if one is free (or releases its lease, with seconds=0)."""
    key = f"prefect-ft:bulkhead:{name}"
    v = store.read(key)
    now, current = v.store_time, core.decode_leases(v.data)
    if seconds == 0:
        new = core.release_lease(current, now, holder)
    else:
        new = core.acquire_lease(current, now, holder, max_concurrent, seconds)
    return new is not None and store.cas(key, v.version, core.encode_leases(new))[0]


def shared(name: str, store: Any, clock: Any, **kw: Any) -> Bulkhead:
    kw = {"max_concurrent": 2, "max_wait_seconds": 0, **kw}  # refusals here are tested at once
    cfg = BulkheadConfig(name, scope="shared", lease_seconds=10, **kw)
    return Bulkhead(cfg, store=store, clock=clock)


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_shared_permit_is_a_lease_in_the_store(
    name: str, store: FlakyStore, clock: Any, flavour: str
) -> None:
    bh = shared(name, store, clock)
    if flavour == "sync":
        with bh.permit():
            held = leases(store, name)
    else:
        async with bh.apermit():
            held = leases(store, name)
    assert len(held) == 1 and held[0][1] == clock() + 10
    assert leases(store, name) == ()


def test_leases_of_other_processes_count_until_they_expire(
    name: str, store: FlakyStore, clock: Any
) -> None:
    bh = shared(name, store, clock)
    assert foreign(store, name, "other-host:1:0", seconds=5)  # then that process is killed
    with bh.permit():
        assert bh.available == 0
        with pytest.raises(BulkheadFullError), bh.permit():
            pass
        clock.advance(5)  # the dead holder's lease runs out
        with bh.permit():
            assert len(leases(store, name)) == 2


def test_a_held_lease_is_renewed_and_not_taken(name: str, store: FlakyStore, clock: Any) -> None:
    bh = shared(name, store, clock, max_concurrent=1)
    with bh.permit():
        for _ in range(3):  # 24 s in all, over a 10 s lease
            clock.advance(8)
            assert bh.renew() == 1
            assert not foreign(store, name, "late:1:0", seconds=5, max_concurrent=1)
        assert len(leases(store, name)) == 1
    assert bh.renew() == 0 and leases(store, name) == ()


def test_an_unrenewed_lease_expires(name: str, store: FlakyStore, clock: Any) -> None:
    bh = shared(name, store, clock, max_concurrent=1)
    with bh.permit():
        clock.advance(10)
        assert foreign(store, name, "late:1:0", seconds=5, max_concurrent=1)
        assert [h for h, _ in leases(store, name)] == ["late:1:0"]


def test_a_shared_waiter_polls_until_a_lease_is_released(
    name: str, store: FlakyStore, clock: Any
) -> None:
    bh = shared(name, store, clock, max_concurrent=1, max_wait_seconds=30)
    assert foreign(store, name, "other:1:0", seconds=60, max_concurrent=1)
    got = threading.Event()

    def waiter() -> None:
        with bh.permit():
            got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert wait_until(lambda: bh.waiting == 1)
    assert not got.is_set()
    assert foreign(store, name, "other:1:0", seconds=0)
    thread.join(DEADLINE_S)
    assert got.is_set() and bh.waiting == 0


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_shared_waiter_gives_up_after_max_wait(
    name: str, store: FlakyStore, clock: Any, flavour: str
) -> None:
    bh = shared(name, store, clock, max_concurrent=1, max_wait_seconds=0.05)
    assert foreign(store, name, "other:1:0", seconds=60)
    with pytest.raises(BulkheadFullError) as err:
        if flavour == "sync":
            with bh.permit():
                pass
        else:
            async with bh.apermit():
                pass
    assert err.value.waited >= 0.05 * 0.95  # timers may fire a hair early
    assert bh.available == 0 and bh.waiting == 0


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_store_outage_degrades_to_the_local_limit(
    name: str,
    store: FlakyStore,
    clock: Any,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prefect_ft.bulkhead.leases as driver

    monkeypatch.setattr(driver, "_STORE_RETRY_SECONDS", 0.0)
    bh = shared(name, store, clock, max_concurrent=1)
    store.down = True

    async def call(inner: Callable[[], Any] = lambda: None) -> None:
        if flavour == "sync":
            with bh.permit():
                inner()
        else:
            async with bh.apermit():
                inner()

    def refused() -> None:
        with pytest.raises(BulkheadFullError), bh.permit():
            pass

    with caplog.at_level(logging.WARNING, logger="prefect_ft.bulkhead"):
        for _ in range(3):
            await call(refused)  # the process-local limit still holds
    assert not bh.store_available
    assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1
    store.down = False
    await call(lambda: leases(store, name) or pytest.fail("no lease after the store came back"))
    assert bh.store_available and leases(store, name) == ()


def test_a_release_during_an_outage_leaves_the_lease_to_expire(
    name: str, store: FlakyStore, clock: Any
) -> None:
    bh = shared(name, store, clock, max_concurrent=1)
    with bh.permit():
        store.down = True
    store.down = False
    assert len(leases(store, name)) == 1 and bh.renew() == 0
    clock.advance(10)
    assert leases(store, name) == ()


def test_a_store_that_cannot_be_opened_degrades_to_the_local_limit(
    name: str, tmp_path: Any
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    url = f"sqlite:///{tmp_path / 'not-a-dir' / 'bulkheads.db'}"
    config = BulkheadConfig(name, max_concurrent=1, max_wait_seconds=0, scope="shared")
    bh = Bulkhead(config, store=url)
    with bh.permit(), pytest.raises(BulkheadFullError), bh.permit():
        pass
    assert not bh.store_available and bh.available == 1


# -- pure lease maths --------------------------------------------------------------------------


def test_lease_maths() -> None:
    one = core.acquire_lease((), 100.0, "a", 2, 10)
    assert one == (("a", 110.0),)
    two = core.acquire_lease(one, 101.0, "b", 2, 10)
    assert two is not None and core.acquire_lease(two, 102.0, "c", 2, 10) is None
    assert core.acquire_lease(two, 102.0, "a", 2, 10) == (("b", 111.0), ("a", 112.0))
    assert core.acquire_lease(two, 110.0, "c", 2, 10) == (("b", 111.0), ("c", 120.0))
    assert core.release_lease(two, 102.0, "a") == (("b", 111.0),)
    assert core.release_lease(two, 102.0, "zz") is None
    assert core.renew_leases(two, 105.0, {"a"}, 2, 10) == (
        (("a", 115.0), ("b", 111.0)),
        frozenset(),
    )
    taken = core.renew_leases((("x", 200.0), ("y", 200.0)), 150.0, {"a"}, 2, 10)
    assert taken == ((("x", 200.0), ("y", 200.0)), frozenset({"a"}))
    assert core.renew_leases(two, 105.0, set(), 2, 10) == (None, frozenset())
    assert core.decode_leases(core.encode_leases(two)) == two
    assert core.decode_leases(None) == core.decode_leases("not json") == ()
    assert core.free_slots(two, 110.5, 2) == 1
    assert core.poll_delay(0, 0.5, 0.0) is None
    assert core.poll_delay(50, 0.99, 0.1) == 0.1


@given(
    st.lists(
        st.tuples(st.sampled_from("acr"), st.sampled_from("pqrst"), st.floats(0, 5)), max_size=60
    ),
    st.integers(1, 4),
)
def test_live_leases_never_exceed_max_concurrent(
    steps: list[tuple[str, str, float]], max_concurrent: int
) -> None:
    state: tuple[core.Lease, ...] = ()
    now = 0.0
    for op, holder, dt in steps:
        now += dt
        if op == "a":
            state = core.acquire_lease(state, now, holder, max_concurrent, 3.0) or state
        elif op == "c":
            released = core.release_lease(state, now, holder)
            state = state if released is None else released
        else:
            renewed = core.renew_leases(state, now, {holder}, max_concurrent, 3.0)[0]
            state = state if renewed is None else renewed
        live = core.live_leases(state, now)
        assert len(live) <= max_concurrent
        assert len({h for h, _ in live}) == len(live)  # one slot per holder
