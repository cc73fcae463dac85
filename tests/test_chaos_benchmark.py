"""benchmarks/chaos.py's own arithmetic: the schedule, what counts as a call while down, recovery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks.chaos import Dependency, Schedule, metrics


def schedule() -> Schedule:
    return Schedule(burst=(4.0, 6.0), latency=(8.0, 11.0), down=(13.0, 38.0))


def test_the_schedule_is_seeded_and_the_outage_has_its_length() -> None:
    a, b = Schedule.drawn(1, 25.0), Schedule.drawn(1, 25.0)
    assert a == b and a != Schedule.drawn(2, 25.0)
    assert a.down[1] - a.down[0] == pytest.approx(25.0)
    assert a.burst[1] <= a.latency[0] and a.latency[1] <= a.down[0]


def test_work_calls_and_probes_while_down_are_counted_apart() -> None:
    dep = Dependency(1, schedule())
    dep.t0 = time.monotonic() - 60.0
    ok = [(1.0 + i * 0.2, True, i) for i in range(15)]  # 5 a second before the burst
    down = [(13.5, False, 100), (37.9, False, 101)]
    after = [(38.4 + i * 0.1, True, 200 + i) for i in range(10)]
    dep.calls = ok + down + after
    dep.probes = [(12.0, True), (14.0, False), (20.0, False), (38.2, True)]
    m = metrics(dep, 30)
    assert m["work_calls_while_down"] == 2
    assert m["probes_while_down"] == 2
    assert m["lost"] == 30 - 25
    # 80 % of 5 calls/s = 4 calls in a 1 s window: the 4th call after the outage, at 38.7 s
    assert m["back_to_full_s"] == pytest.approx(0.7)


def test_the_dependency_refuses_work_and_checks_while_down() -> None:
    dep = Dependency(1, Schedule(burst=(90, 91), latency=(92, 93), down=(0.0, 60.0)))
    dep.t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        dep(1)
    with pytest.raises(ConnectionRefusedError):
        dep.health()
    assert [c[1] for c in dep.calls] == [False] and [p[1] for p in dep.probes] == [False]
    dep.schedule = Schedule(burst=(90, 91), latency=(92, 93), down=(70.0, 80.0))
    assert dep(2) == 2 and dep.health() == {"healthy": True}


def test_c_s_dependency_announces_its_return_when_the_outage_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from benchmarks.chaos import _supervisor
    from prefect_ft import CircuitBreaker

    monkeypatch.setenv("PREFECT_FT_STORE_URL", f"sqlite:///{tmp_path / 'ft.db'}")
    name = "chaos-supervisor-test"
    breaker = CircuitBreaker(name, refresh_seconds=None, failure_threshold=1, open_seconds=600)
    with pytest.raises(ConnectionError):
        breaker.call(lambda: (_ for _ in ()).throw(ConnectionError()))
    dep = Dependency(1, Schedule(burst=(90, 91), latency=(92, 93), down=(0.0, 0.3)))
    dep.t0 = time.monotonic()
    _supervisor(name, dep, threading.Event())  # returns once it has announced
    assert dep.now() >= 0.3
    assert breaker.state == "HALF_OPEN"  # no health check here: the announcement half-opens it
