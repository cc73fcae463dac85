"""The `BreakerStore` contract, run against every backend; `open_store`; Redis outages."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from multiprocessing.pool import ThreadPool

import pytest
from redis_helpers import RedisServer

from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError
from prefect_ft.stores import BreakerStore, InMemoryBreakerStore, open_store
from prefect_ft.stores.redis import RedisBreakerStore
from prefect_ft.stores.sqlite import SQLiteBreakerStore

KEY = "prefect-ft:breaker:ipc"
FORMS = ("memory://", "sqlite:///PATH", "redis://HOST:PORT/DB")


def cas_increment(store: BreakerStore, key: str, times: int, barrier=None) -> int:
    """Add 1 to the integer in `key`, `times` times, through a cas retry loop.

    Module-level so that spawned processes can unpickle it. Returns the number of lost races.
    """
    if barrier is not None:
        barrier.wait(60)
    conflicts = 0
    current = store.read(key)
    for _ in range(times):
        while True:
            ok, current = store.cas(key, current.version, str(int(current.data or 0) + 1))
            if ok:
                break
            conflicts += 1
    return conflicts


def _process_main(store: BreakerStore, key: str, times: int, barrier, results) -> None:
    try:
        results.put(cas_increment(store, key, times, barrier))
    except BaseException as exc:  # report at once instead of leaving the parent waiting
        results.put(f"{type(exc).__name__}: {exc}")
        raise


def _open_and_increment(path: str, key: str, times: int, barrier, results) -> None:
    try:
        barrier.wait(60)  # every process creates the database at the same moment
        store = SQLiteBreakerStore(path)
        try:
            results.put(cas_increment(store, key, times))
        finally:
            store.close()
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")
        raise


def _run_processes(target, args: tuple, processes: int, method: str = "spawn") -> list[int]:
    """Run `target(*args, barrier, results)` in `processes` processes; their results.

    'spawn' by default: the store travels pickled, as to a process pool's workers.
    """
    ctx = multiprocessing.get_context(method)
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        out = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert [o for o in out if isinstance(o, str)] == []  # no worker failed
    assert [p.exitcode for p in procs] == [0] * processes
    return out


class TestStoreContract:
    """Every backend behaves like the reference `InMemoryBreakerStore`."""

    def test_read_absent_key(self, store: BreakerStore) -> None:
        record = store.read("prefect-ft:absent")
        assert record.data is None
        assert record.version == 0
        assert isinstance(record.store_time, float)

    def test_cas_creates_with_expected_zero(self, store: BreakerStore) -> None:
        ok, record = store.cas(KEY, 0, '{"state": "CLOSED"}')
        assert ok
        assert record.data == '{"state": "CLOSED"}'
        assert record.version == 1
        assert store.read(KEY).data == '{"state": "CLOSED"}'

    def test_cas_stale_version_fails_and_returns_current(self, store: BreakerStore) -> None:
        store.cas(KEY, 0, "one")
        store.cas(KEY, 1, "two")
        for stale in (0, 1, 3):
            ok, record = store.cas(KEY, stale, "lost")
            assert not ok
            assert (record.data, record.version) == ("two", 2)
        assert store.read(KEY).data == "two"

    def test_cas_on_absent_key_with_nonzero_version_fails(self, store: BreakerStore) -> None:
        ok, record = store.cas(KEY, 3, "x")
        assert not ok
        assert (record.data, record.version) == (None, 0)

    def test_versions_increase_by_one(self, store: BreakerStore) -> None:
        for expected in range(5):
            ok, record = store.cas(KEY, expected, f"v{expected + 1}")
            assert ok
            assert record.version == expected + 1
            again = store.read(KEY)
            assert (again.data, again.version) == (f"v{expected + 1}", expected + 1)

    def test_text_round_trips_unchanged(self, store: BreakerStore) -> None:
        text = '{"name": "ipc \\u00e9", "q": "\'\\"", "e": ""}\n\tünïcode ✓'
        store.cas(KEY, 0, text)
        assert store.read(KEY).data == text
        store.cas("prefect-ft:empty", 0, "")
        assert (store.read("prefect-ft:empty").data, store.read("prefect-ft:empty").version) == (
            "",
            1,
        )

    def test_read_many(self, store: BreakerStore) -> None:
        store.cas("a", 0, "A")
        store.cas("b", 0, "B")
        store.cas("b", 1, "BB")
        got = store.read_many(["a", "b", "missing"])
        assert set(got) == {"a", "b", "missing"}
        assert (got["a"].data, got["a"].version) == ("A", 1)
        assert (got["b"].data, got["b"].version) == ("BB", 2)
        assert (got["missing"].data, got["missing"].version) == (None, 0)
        assert len({r.store_time for r in got.values()}) == 1  # one answer, one clock reading
        assert store.read_many([]) == {}

    def test_delete(self, store: BreakerStore) -> None:
        store.cas(KEY, 0, "x")
        store.delete(KEY)
        assert store.read(KEY).version == 0
        assert store.read(KEY).data is None
        store.delete(KEY)  # deleting an absent key is not an error
        ok, record = store.cas(KEY, 0, "again")
        assert ok and record.version == 1

    def test_store_time_is_now_and_monotone(self, store: BreakerStore, store_kind: str) -> None:
        stamps = [store.time()]
        for i in range(50):
            stamps.append(store.read(KEY).store_time)
            stamps.append(store.cas(KEY, i, str(i))[1].store_time)
            stamps.append(store.read_many([KEY, "x"])[KEY].store_time)
            stamps.append(store.time())
        assert all(isinstance(t, float) for t in stamps)
        assert stamps == sorted(stamps), "store_time went backwards"
        if store_kind == "memory":
            assert abs(stamps[-1] - time.monotonic()) < 1.0
        else:  # wall clock; the test Redis runs on this host
            assert abs(stamps[-1] - time.time()) < 1.0

    def test_round_trips_count_one_per_call(self, store: BreakerStore, store_kind: str) -> None:
        store.cas(KEY, 0, "warm")  # the first script call may load it into the server
        store.read_many([KEY])
        calls = [
            lambda: store.read(KEY),
            lambda: store.read("absent"),
            lambda: store.read_many([KEY, "absent", "b"]),
            lambda: store.cas(KEY, 1, "ok"),
            lambda: store.cas(KEY, 1, "stale"),
            lambda: store.delete(KEY),
        ]
        for call in calls:
            before = store.round_trips
            call()
            assert store.round_trips == before + 1
        before = store.round_trips
        store.time()
        # Only Redis asks the backend for its clock; the others read a local one.
        assert store.round_trips == before + (1 if store_kind == "redis" else 0)

    def test_pickle_round_trip_then_use(self, store: BreakerStore, store_kind: str) -> None:
        if store_kind == "memory":
            pytest.skip("memory:// lives in one process; it does not travel")
        store.cas(KEY, 0, "before")
        copy = pickle.loads(pickle.dumps(store))
        try:
            assert copy.url == store.url
            assert copy.read(KEY).data == "before"
            ok, record = copy.cas(KEY, 1, "after")
            assert ok and record.version == 2
            assert store.read(KEY).data == "after"  # same backend, not a snapshot
            assert pickle.loads(pickle.dumps(copy)).read(KEY).version == 2
        finally:
            copy.close()

    def test_threads_lose_no_update(self, store: BreakerStore) -> None:
        threads, times = 8, 200
        barrier = threading.Barrier(threads)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                cas_increment(store, KEY, times, barrier)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=run) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert not errors
        assert store.read(KEY).data == str(threads * times)
        assert store.read(KEY).version == threads * times

    @pytest.mark.slow
    def test_processes_lose_no_update(self, store: BreakerStore, store_kind: str) -> None:
        if store_kind == "memory":
            pytest.skip("memory:// is not shared between processes")
        processes, times = 4, 200
        conflicts = _run_processes(_process_main, (store, KEY, times), processes)
        assert len(conflicts) == processes
        assert store.read(KEY).data == str(processes * times)
        assert store.read(KEY).version == processes * times


class TestOpenStore:
    """`open_store(url)` picks the backend by scheme and rejects bad URLs with the forms."""

    def test_memory(self) -> None:
        assert isinstance(open_store("memory://"), InMemoryBreakerStore)

    def test_sqlite(self, tmp_path) -> None:
        path = tmp_path / "deep" / "er" / "ft.db"
        store = open_store(f"sqlite:///{path}")
        try:
            assert isinstance(store, SQLiteBreakerStore)
            assert store.url == f"sqlite:///{path}"
            assert path.exists()  # parent directories were created
        finally:
            store.close()

    @pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "redis://h", "rediss://h:1/2"])
    def test_redis_opens_without_connecting(self, url: str) -> None:
        store = open_store(url)
        assert isinstance(store, RedisBreakerStore)
        assert store.url == url
        assert store.round_trips == 0

    @pytest.mark.parametrize(
        "url",
        ["", "nonsense", "memory:", "/tmp/x.db", "ftp://host/x", "postgres://h/db", None, 42],
    )
    def test_unparseable_or_unknown_names_allowed_forms(self, url) -> None:
        with pytest.raises(ConfigurationError) as info:
            open_store(url)
        assert all(form in str(info.value) for form in FORMS), str(info.value)

    @pytest.mark.parametrize(
        ("url", "names"),
        [
            ("redis://:6379/0", "host"),
            ("redis://h:notaport/0", "port"),
            ("redis://h:0/0", "port"),
            ("redis://h:70000/0", "port"),
            ("redis://h:6379/zero", "db"),
            ("redis://h:6379/-1", "db"),
            ("redis://h:6379/0?socket_timeout=9", "query"),
            ("redis://[broken:6379/0", "parsed"),
            ("sqlite://", "sqlite:///PATH"),
        ],
    )
    def test_bad_url_names_the_fault(self, url: str, names: str) -> None:
        with pytest.raises(ConfigurationError, match=names):
            open_store(url)


@pytest.mark.slow
def test_sqlite_concurrent_first_open(tmp_path) -> None:
    """Processes that create the same fresh database at once all get a working store."""
    path = str(tmp_path / "fresh" / "ft.db")
    _run_processes(_open_and_increment, (path, KEY, 50), 4)
    store = SQLiteBreakerStore(path)
    try:
        assert store.read(KEY).data == "200"
    finally:
        store.close()


@pytest.mark.slow
def test_sqlite_store_survives_fork(tmp_path) -> None:
    """Forked children with an open store get their own connection; the parent keeps its own."""
    store = SQLiteBreakerStore(str(tmp_path / "ft.db"))
    try:
        assert store.cas(KEY, 0, "0")[0]
        _run_processes(_process_main, (store, KEY, 100), 3, method="fork")
        cas_increment(store, KEY, 100)
        assert store.read(KEY).data == "400"
    finally:
        store.close()


ALL_CALLS = {
    "read": lambda s: s.read(KEY),
    "read_many": lambda s: s.read_many([KEY, "b"]),
    "cas": lambda s: s.cas(KEY, 1, "x"),
    "delete": lambda s: s.delete(KEY),
    "time": lambda s: s.time(),
}


@pytest.mark.slow
class TestRedisOutage:
    """Redis down or hung: every call fails fast with `StoreUnavailableError`, then recovers."""

    def assert_all_fail_fast(self, store: RedisBreakerStore, budget: float = 1.0) -> None:
        for name, call in ALL_CALLS.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                call(store)
            assert time.monotonic() - started < budget, name

    def test_stopped_server_then_restart_on_same_port(self, private_redis: RedisServer) -> None:
        store = RedisBreakerStore(private_redis.url)
        try:
            assert store.cas(KEY, 0, "x")[0]
            port = private_redis.port
            private_redis.stop()
            self.assert_all_fail_fast(store)
            self.assert_all_fail_fast(store)  # still fast on repeated failures
            private_redis.start()
            assert private_redis.port == port
            assert store.read(KEY).version == 0  # no persistence: the server came back empty
            assert store.cas(KEY, 0, "y")[0]
            assert store.read_many([KEY])[KEY].data == "y"
            store.delete(KEY)
            assert store.time() > 0
        finally:
            store.close()

    def test_killed_server_restarted_between_calls(self, private_redis: RedisServer) -> None:
        """Pooled connections to the dead server are replaced without a failed call."""
        store = RedisBreakerStore(private_redis.url)
        try:
            with ThreadPool(4) as pool:  # several pooled connections
                pool.map(lambda i: store.cas(f"k{i}", 0, "x"), range(4))
            private_redis.kill()
            private_redis.start()
            assert store.read(KEY).version == 0
            assert store.cas(KEY, 0, "again")[0]
        finally:
            store.close()

    def test_hung_server_times_out(self, private_redis: RedisServer) -> None:
        store = RedisBreakerStore(private_redis.url)
        try:
            store.cas("a", 0, "A")
            store.cas("b", 0, "B")
            private_redis.pause()
            try:
                self.assert_all_fail_fast(store)
            finally:
                private_redis.resume()
            # A late reply to a timed-out request must never be read as the next answer.
            for _ in range(3):
                assert store.read("b").data == "B"
                assert store.read("a").data == "A"
        finally:
            store.close()

    def test_opening_while_down_is_fine(self, private_redis: RedisServer) -> None:
        private_redis.stop()
        store = RedisBreakerStore(private_redis.url)
        try:
            self.assert_all_fail_fast(store)
            private_redis.start()
            assert store.cas(KEY, 0, "x")[0]
        finally:
            store.close()

    def test_script_cache_flush_costs_one_extra_round_trip(self, redis_server: str) -> None:
        import redis

        store = RedisBreakerStore(redis_server)
        try:
            with redis.Redis.from_url(redis_server) as admin:
                admin.flushdb()
                assert store.cas(KEY, 0, "x")[0]
                admin.script_flush()
            before = store.round_trips
            assert store.cas(KEY, 1, "y")[0]
            assert store.round_trips == before + 2  # EVALSHA missed, EVAL reloaded it
            before = store.round_trips
            assert store.cas(KEY, 2, "z")[0]
            assert store.round_trips == before + 1
        finally:
            store.close()

    def test_closed_store_refuses(self, redis_server: str) -> None:
        store = RedisBreakerStore(redis_server)
        store.close()
        with pytest.raises(StoreUnavailableError):
            store.read(KEY)
