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


def test_the_trace_shows_the_recovery_and_marks_where_throughput_is_full() -> None:
    from benchmarks.chaos_trace import timeline

    dep = Dependency(1, schedule())
    dep.calls = [(37.9, False, 100), (38.05, True, 1), (38.1, True, 2), (38.2, True, 3), (38.3, True, 4)]  # fmt: skip
    dep.callers = ["ThreadPoolExecutor-0_1", "replay-loop", "prefect-ft-replay-0", "ThreadPoolExecutor-0_2", "x"]  # fmt: skip
    dep.probes, dep.probers = [(38.01, True)], ["prefect-ft-prober"]
    dep.announced_at = 38.0
    lines = timeline(dep, [(38.02, "half-opened: readiness announced")], rate=5.0, upto=1.0)
    assert lines[0] == "-0.100 s  call 100 FAIL (task 1)"
    assert lines[1:4] == [
        "+0.000 s  supervisor announces ready",
        "+0.010 s  health check pass (prober)",
        "+0.020 s  breaker half-opened: readiness announced",
    ]
    assert lines[4].startswith("+0.050 s  call 1 ok (replay-loop)  [1 ok in 1 s]")
    assert "replay-0" in lines[5] and "task 2" in lines[6]
    # 80 % of 5/s = 4 calls in a 1 s window: the 4th success after the end
    assert [i for i, line in enumerate(lines) if "FULL" in line] == [7]
