"""`/metrics` and `/health` over HTTP after a scripted run (issue 10, Must show 3)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from prefect_ft import CircuitBreaker, CircuitOpenError, FailureRate
from prefect_ft.bulkhead.permits import Bulkhead
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.core.health import Level
from prefect_ft.ops import metrics
from prefect_ft.ops.health import HealthMonitor
from prefect_ft.ops.server import OpsServerError, start_ops_server
from prefect_ft.ops.view import note_alarm, note_recovery
from prefect_ft.stores import InMemoryBreakerStore
from tests.conftest import FakeClock
from tests.waiting import DEADLINE_S, wait_until


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def boom() -> None:
    raise ConnectionError("down")


@pytest.fixture
def store(clock: FakeClock) -> InMemoryBreakerStore:
    return InMemoryBreakerStore(clock=clock)


def test_gauges_exist_before_any_transition_and_counts_after_a_scripted_run(
    clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    b = CircuitBreaker(
        "ops-ipc", store=store, clock=clock, refresh_seconds=None, failure_threshold=3
    )
    mon = HealthMonitor(store, emit=lambda *a: None)
    with start_ops_server(0, store=store, monitor=mon, check_seconds=None) as srv:
        code, text = get(srv.url + "/metrics")
        assert code == 200
        before = samples(text)
        # the series exist from the breaker's start: before its first call or transition
        assert value(before, "prefect_ft_breaker_state", breaker="ops-ipc", state="CLOSED") == 1
        assert value(before, "prefect_ft_breaker_state", breaker="ops-ipc", state="OPEN") == 0
        assert value(before, "prefect_ft_calls_total", breaker="ops-ipc", kind="failed") == 0

        for _ in range(2):
            b.call(lambda: 1)
        for _ in range(3):
            with pytest.raises(ConnectionError):
                b.call(boom)
        with pytest.raises(CircuitOpenError):
            b.call(lambda: 1)
        after = samples(get(srv.url + "/metrics")[1])
        assert value(after, "prefect_ft_breaker_state", breaker="ops-ipc", state="OPEN") == 1
        assert value(after, "prefect_ft_breaker_state", breaker="ops-ipc", state="CLOSED") == 0
        assert value(after, "prefect_ft_calls_total", breaker="ops-ipc", kind="successful") == 2
        assert value(after, "prefect_ft_calls_total", breaker="ops-ipc", kind="failed") == 3
        assert value(after, "prefect_ft_calls_total", breaker="ops-ipc", kind="not_permitted") == 1
        assert value(after, "prefect_ft_health_level", component="ops-ipc") == Level.DEGRADED
        code, body = get(srv.url + "/health")
        health = json.loads(body)
        assert code == 200
        assert health["components"]["ops-ipc"] == {"level": "Degraded", "reasons": ["breaker OPEN"]}


def test_rates_bulkheads_recoveries_and_detections(
    clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    b = CircuitBreaker(
        "ops-rate",
        store=store,
        clock=clock,
        refresh_seconds=None,
        trip=FailureRate(50, minimum_calls=10),
    )
    for i in range(4):
        if i % 4 == 0:
            with pytest.raises(ConnectionError):
                b.call(boom)
        else:
            b.call(lambda: 1)
    bh = Bulkhead(BulkheadConfig("ops-gpu", max_concurrent=2, max_wait_seconds=0))
    metrics.record_recovery("ops-rate", "restart", "succeeded")
    metrics.record_detection("burst", "HIGH")
    metrics.set_dead_letters_pending("ops-rate", 7)
    with bh.permit():
        found = samples(metrics.exposition().decode())
    assert value(found, "prefect_ft_failure_rate", breaker="ops-rate") == 0.25
    assert value(found, "prefect_ft_slow_call_rate", breaker="ops-rate") == 0.0
    assert value(found, "prefect_ft_bulkhead_available", bulkhead="ops-gpu") == 1
    assert value(found, "prefect_ft_bulkhead_max_concurrent", bulkhead="ops-gpu") == 2
    assert value(found, "prefect_ft_bulkhead_waiting", bulkhead="ops-gpu") == 0
    assert value(found, "prefect_ft_bulkhead_queue_waits_total", bulkhead="ops-gpu") == 0
    labels = {"component": "ops-rate", "strategy": "restart", "outcome": "succeeded"}
    assert value(found, "prefect_ft_recovery_total", **labels) >= 1
    assert value(found, "prefect_ft_faults_detected_total", pattern="burst", severity="HIGH") >= 1
    assert value(found, "prefect_ft_dead_letters_pending", breaker="ops-rate") == 7


def test_the_ops_server_alone_sees_the_fleet_through_the_store(
    clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    # another process's breaker: only its record is in the store, no object here
    other = CircuitBreaker("ops-remote", store=store, clock=clock, refresh_seconds=None)
    other.force_open()
    name = other.name
    del other
    import gc

    gc.collect()
    note_alarm(store, "ops-remote", "CRITICAL", "burst")
    note_recovery(store, "ops-model", "failed", "reload")
    with start_ops_server(0, store=store, check_seconds=None) as srv:
        found = samples(get(srv.url + "/metrics")[1])
        assert value(found, "prefect_ft_breaker_state", breaker=name, state="FORCED_OPEN") == 1
        code, body = get(srv.url + "/health")
    health = json.loads(body)
    assert code == 503  # Critical: an uptime check can read the status code alone
    assert health["level"] == "Critical"
    assert health["components"]["ops-remote"]["reasons"] == [
        "recent CRITICAL alarm",
        "breaker FORCED_OPEN",
    ]
    assert health["components"]["ops-model"] == {
        "level": "Critical",
        "reasons": ["recovery failed"],
    }


def test_the_ops_server_counts_pending_dead_letters_from_the_store(
    clock: FakeClock, store: InMemoryBreakerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_ft.deadletter.item import encode_inputs
    from prefect_ft.deadletter.queue import DeadLetterQueue

    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY", "test-key-0123456789abcdef0123456789")
    queue = DeadLetterQueue("ops-dlq", store=store)
    for x in range(3):
        encoding, payload = encode_inputs((x,), {})
        queue.put(
            task_name="f", task_path="m:f", component="ops-dlq", policy="ipc",
            parameters={"x": x}, reason="test", encoding=encoding, payload=payload,
        )  # fmt: skip
    first = next(queue.items("pending"))
    done = queue.claim(first, holder="t", lease_seconds=60)
    assert done is not None and queue.complete(done, "ok")
    with start_ops_server(0, store=store, check_seconds=None) as srv:
        found = samples(get(srv.url + "/metrics")[1])
    assert value(found, "prefect_ft_dead_letters_pending", breaker="ops-dlq") == 2


def test_health_changed_is_announced_once_per_change(
    clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    seen: list[tuple[Any, ...]] = []
    b = CircuitBreaker("ops-flap", store=store, clock=clock, refresh_seconds=None)
    mon = HealthMonitor(store, emit=lambda *a: seen.append(a))
    mon.check()
    assert seen == []  # the first check learns the levels; it announces nothing
    b.force_open()
    mon.check()
    mon.check()
    b.clear_overlay()
    mon.check()
    mine = [s for s in seen if s[0] == "ops-flap"]
    assert mine == [
        ("ops-flap", Level.HEALTHY, Level.DEGRADED, ("breaker FORCED_OPEN",)),
        ("ops-flap", Level.DEGRADED, Level.HEALTHY, ()),
    ]


def test_a_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OpsServerError, match=rf"^port {port} on 127.0.0.1 is already in use$"):
            start_ops_server(port, store=None)


def test_unknown_path_is_404() -> None:
    with start_ops_server(0, store=None, check_seconds=None) as srv:
        code, body = get(srv.url + "/nope")
    assert code == 404 and "/health" in body


def test_bulkhead_queue_waits_are_counted() -> None:
    import threading
    import time

    # a name of this run only: the counters are per process, and a second run (or another
    # test of the name) would find them already counted
    name = f"ops-queue-{uuid.uuid4().hex[:8]}"
    bh = Bulkhead(BulkheadConfig(name, max_concurrent=1, max_wait_seconds=DEADLINE_S))
    held, go = threading.Event(), threading.Event()

    def hold() -> None:
        with bh.permit():
            held.set()
            go.wait(DEADLINE_S)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(DEADLINE_S)
    threading.Timer(0.05, go.set).start()
    t0 = time.monotonic()
    with bh.permit():
        waited = time.monotonic() - t0
    t.join(DEADLINE_S)
    found = samples(metrics.exposition().decode())
    assert value(found, "prefect_ft_bulkhead_queue_waits_total", bulkhead=name) == 1
    got = value(found, "prefect_ft_bulkhead_queue_wait_seconds_total", bulkhead=name)
    assert 0.03 <= got <= waited + 0.01


def test_a_transition_in_this_process_announces_the_component_health(
    clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    from prefect_ft.ops.health import unwatch_transitions, watch_transitions

    seen: list[tuple[Any, ...]] = []
    unwatch_transitions()
    watch_transitions(emit=lambda *a: seen.append(a))
    try:
        b = CircuitBreaker(
            "ops-watch", store=store, clock=clock, refresh_seconds=None, failure_threshold=2
        )
        for _ in range(2):
            with pytest.raises(ConnectionError):
                b.call(boom)
        assert wait_until(lambda: any(s[0] == "ops-watch" for s in seen))
        b.reset()
        assert wait_until(lambda: len([s for s in seen if s[0] == "ops-watch"]) == 2)
    finally:
        unwatch_transitions()
    mine = [s for s in seen if s[0] == "ops-watch"]
    assert mine == [
        ("ops-watch", None, Level.DEGRADED, ("breaker OPEN",)),  # new since the last check
        ("ops-watch", Level.DEGRADED, Level.HEALTHY, ()),
    ]
    assert not [s for s in seen if s[0] == "system"]  # the fleet's level is the ops server's
