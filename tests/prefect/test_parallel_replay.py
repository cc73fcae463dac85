"""Replay with bounded parallelism: N at once while CLOSED, one probe while HALF_OPEN, the ramp's
share in RECOVERY; a waiting replay starts on the breaker's transition, not on a poll; two
replayers of N workers each on one real store still run every item exactly once. (Here, under
tests/prefect: a replay emits Prefect events, so it uses the session's test server.)"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from prefect_ft.core.conditions import ConsecutiveFailures
from prefect_ft.core.replay_pace import replay_slots
from prefect_ft.deadletter.queue import DeadLetterQueue, encode_inputs
from prefect_ft.deadletter.replay import replay
from prefect_ft.presets import preset_config
from prefect_ft.tasks.gates import gate_for
from prefect_ft.tasks.policies import FTPolicy

# FT_TEST_REPEAT=20: every test 20 times per store in one session (the 20-runs-in-a-row rule
# for concurrency tests, without starting the session's Prefect server 20 times)
REPEAT = int(os.environ.get("FT_TEST_REPEAT", "1"))


@pytest.fixture(params=["sqlite", "redis"] * REPEAT)
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # fmt: skip
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY", f"parallel-{uuid.uuid4().hex}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ft.db'}"
        monkeypatch.setenv("PREFECT_FT_STORE_URL", url)
        yield url
        return
    from tests.contracts.redis_helpers import RedisServer, find_redis_server

    if find_redis_server() is None:
        pytest.skip("REDIS BACKEND NOT TESTED: no redis-server binary on PATH")
    server = RedisServer(tmp_path / "redis").start()
    try:
        monkeypatch.setenv("PREFECT_FT_STORE_URL", server.url)
        yield server.url
    finally:
        server.stop()


def policy(store_url: str, **fields: Any) -> FTPolicy:
    name = f"par-{uuid.uuid4().hex[:8]}"
    cfg = replace(preset_config("ipc"), name=name, **{"recovery_seconds": 0.0, **fields})
    return FTPolicy(name, cfg, store_url=store_url)


def fill(p: FTPolicy, n: int) -> DeadLetterQueue:
    queue = DeadLetterQueue(p.name, p.store_url)
    spec = "pickle:" + base64.b64encode(cloudpickle.dumps(p)).decode()
    for x in range(n):
        encoding, payload = encode_inputs((x,), {})
        queue.put(task_name="f", task_path="m:f", component=p.name, policy=spec,
                  parameters={"x": x}, reason="test", encoding=encoding, payload=payload)  # fmt: skip
    return queue


class InFlight:
    """A replayed function that records how many calls ran at once, and what the breaker let."""

    def __init__(self, p: FTPolicy, hold: float = 0.0, barrier: int = 0) -> None:
        self.p, self.hold = p, hold
        self.barrier = threading.Barrier(barrier, timeout=30) if barrier else None
        self.lock = threading.Lock()
        self.now = 0
        self.seen: list[
            tuple[int, int, str, float, float]
        ] = []  # in flight, allowed, state, start, end
        self.ran: list[int] = []

    def __call__(self, x: int) -> int:
        breaker = gate_for(self.p).breaker
        with self.lock:
            self.now += 1
            allowed = replay_slots(breaker.record, self.p.breaker, breaker.now())
            row = [self.now, allowed, breaker.state, time.monotonic(), 0.0]
        try:
            if self.barrier is not None:  # every worker must be in here at once to get past
                self.barrier.wait()
            time.sleep(self.hold)
        finally:
            with self.lock:
                self.now -= 1
                row[4] = time.monotonic()
                self.seen.append(tuple(row))  # type: ignore[arg-type]
                self.ran.append(x)
        return x


def test_a_closed_breaker_s_backlog_runs_n_at_once(store_url: str) -> None:
    p = policy(store_url)
    fill(p, 8)
    fn = InFlight(p, barrier=4)  # only four calls in flight together get through the barrier
    report = replay(p.name, concurrency=4, functions={"m:f": fn})
    assert not report.failed and len(report.done) == 8 and report.remaining == 0
    assert sorted(fn.ran) == list(range(8))
    assert max(s[0] for s in fn.seen) == 4


def test_the_policy_s_replay_concurrency_is_the_default(store_url: str) -> None:
    p = policy(store_url, replay_concurrency=3)
    fill(p, 6)
    fn = InFlight(p, barrier=3)
    report = replay(p.name, functions={"m:f": fn})
    assert not report.failed and len(report.done) == 6
    assert max(s[0] for s in fn.seen) == 3


def test_a_bad_concurrency_is_refused_naming_it(store_url: str) -> None:
    p = policy(store_url)
    queue = fill(p, 1)
    with pytest.raises(ValueError, match=r"concurrency must be an integer in \[1, 64\]"):
        replay(p.name, concurrency=0)
    assert [i.status for i in queue.items()] == ["pending"]  # nothing was touched


def test_after_an_outage_one_probe_then_the_ramp_s_share_then_all(store_url: str) -> None:
    p = policy(store_url, open_seconds=0.3, recovery_seconds=1.0, trip=ConsecutiveFailures(1))
    fill(p, 40)
    breaker = gate_for(p).breaker
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert breaker.state == "OPEN"
    refused = breaker.counts["not_permitted"]
    fn = InFlight(p, hold=0.05)
    report = replay(p.name, wait_seconds=30, functions={"m:f": fn})
    assert not report.failed and len(report.done) == 40 and breaker.state == "CLOSED"
    first = min(fn.seen, key=lambda s: s[3])
    assert first[0] == 1  # the probe ran alone ...
    assert all(
        s[3] >= first[4] for s in fn.seen if s is not first
    )  # ... nothing started before it ended
    assert all(s[0] <= s[1] for s in fn.seen)  # never more in flight than the state allowed
    assert max(s[0] for s in fn.seen) == 4  # and all four once closed
    assert breaker.counts["not_permitted"] - refused <= 3  # no spinning against the ramp


def waiting_replay(p: FTPolicy) -> tuple[Any, InFlight, threading.Thread, list[Any]]:
    """Open `p`'s breaker for good, then start a replay in a thread that waits for it."""
    breaker = gate_for(p).breaker
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    fn = InFlight(p)
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(replay(p.name, wait_seconds=120, functions={"m:f": fn})))  # fmt: skip
    t.start()
    return breaker, fn, t, out


def test_a_waiting_replay_starts_on_the_half_open_not_on_a_poll(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from prefect_ft.deadletter import pacer

    monkeypatch.setattr(pacer, "POLL_SECONDS", 60.0)  # only the transition can wake it in time
    p = policy(store_url, open_seconds=600.0, max_open_seconds=600.0, trip=ConsecutiveFailures(1))
    fill(p, 3)
    breaker, fn, t, out = waiting_replay(p)
    try:
        time.sleep(0.5)  # let it reach its wait (if it has not, it sees HALF_OPEN at once anyway)
        assert not fn.seen
        t0 = time.monotonic()
        assert breaker.mark_recovered()
        t.join(60)
        assert not t.is_alive() and len(out[0].done) == 3
        assert min(s[3] for s in fn.seen) - t0 < 20.0  # a 60 s poll would not have woken yet
    finally:
        breaker.reset()  # a failed assertion must not leave the replay thread waiting
        t.join(60)


def test_two_replayers_of_four_workers_run_every_item_exactly_once(store_url: str) -> None:
    p = policy(store_url)
    fill(p, 40)
    fn = InFlight(p, hold=0.005)
    reports: list[Any] = []

    def one() -> None:
        reports.append(replay(p.name, concurrency=4, functions={"m:f": fn}))

    threads = [threading.Thread(target=one) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done = [i for r in reports for i in r.done]
    assert sorted(done) == sorted(f"{p.name}/{n}" for n in range(1, 41))
    assert sorted(fn.ran) == list(range(40))  # each exactly once


def test_a_pass_that_waited_goes_on_with_items_dead_lettered_meanwhile(store_url: str) -> None:
    p = policy(store_url, open_seconds=600.0, max_open_seconds=600.0, trip=ConsecutiveFailures(1))
    queue = fill(p, 2)
    breaker, fn, t, out = waiting_replay(p)
    try:
        time.sleep(0.5)  # the pass has read the queue (2 items) and waits for the breaker
        spec = queue.get(1).policy  # type: ignore[union-attr]
        for x in range(2, 6):  # refused while it waited
            encoding, payload = encode_inputs((x,), {})
            queue.put(task_name="f", task_path="m:f", component=p.name, policy=spec,
                      parameters={"x": x}, reason="test", encoding=encoding, payload=payload)  # fmt: skip
        breaker.reset()
        t.join(60)
        assert not t.is_alive()
        assert len(out[0].done) == 6 and out[0].remaining == 0  # one pass, all six
        assert sorted(fn.ran) == list(range(6))
    finally:
        breaker.reset()
        t.join(60)


def test_the_replay_hears_of_a_transition_before_slow_global_listeners(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # the Prefect event of a transition is built and queued by a global listener; a replay
    # waiting for the breaker must not wait for it (nor for any other slow listener)
    from prefect_ft.breaker import add_global_listener, remove_global_listener
    from prefect_ft.deadletter import pacer

    monkeypatch.setattr(pacer, "POLL_SECONDS", 60.0)
    p = policy(store_url, open_seconds=600.0, max_open_seconds=600.0, trip=ConsecutiveFailures(1))
    fill(p, 2)
    breaker = gate_for(p).breaker
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    slow_until = [0.0]

    def slow(b: Any, event: Any) -> None:
        if b is breaker and event.kind == "half-opened":
            time.sleep(15.0)
            slow_until[0] = time.monotonic()

    fn = InFlight(p)
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(replay(p.name, wait_seconds=120, functions={"m:f": fn})))  # fmt: skip
    add_global_listener(slow)
    try:
        t.start()
        time.sleep(0.5)  # the pass has read the queue and waits for the breaker
        assert breaker.mark_recovered()  # returns once every listener has run
        t.join(60)
        assert len(out[0].done) == 2
        assert min(s[3] for s in fn.seen) < slow_until[0]  # started while `slow` still ran
    finally:
        remove_global_listener(slow)
        breaker.reset()
        t.join(60)


def test_a_bulkhead_of_one_replays_one_at_a_time_even_without_a_wait_budget(store_url: str) -> None:
    # workers waiting for a fellow worker's permit are not waiting for the breaker:
    # wait_seconds=0 must not end them (it ended the second worker with one item left)
    from prefect_ft.core.bulkhead import BulkheadConfig

    p = policy(store_url)
    p = replace(p, bulkhead=BulkheadConfig(p.name, max_concurrent=1, max_wait_seconds=0))
    fill(p, 3)
    fn = InFlight(p, hold=0.05)
    report = replay(p.name, concurrency=4, functions={"m:f": fn})
    assert len(report.done) == 3 and not report.waiting
    assert max(s[0] for s in fn.seen) == 1
