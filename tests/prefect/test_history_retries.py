"""Failed attempts of retried task runs become history rows (real runs on the shared server).

Prefect 3.9 records no `Failed` state for an attempt it retries: the attempt ends in
`Retrying` (no delay) or `AwaitingRetry` (with a delay), with an empty message, and the failure is
only in the engine's "Retry n/m will start" log line. These tests check that history still
counts every attempt, classified from that log line, once, in the window that holds its end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
from prefect import flow

from prefect_ft import ft_task
from prefect_ft.detection import FailureType
from prefect_ft.history.reader import History, attempt_rows, parse_retry_log, read_history
from tests.prefect.helpers import detect_since, fast_policy, task_runs, unique, wait_for

CONN = FailureType.CONNECTION_ERROR.code


def _flaky_flow(name: str, fails: int, **options: object) -> Callable[[], str]:
    """A flow calling one `ft_task` that raises `ConnectionError` `fails` times, then succeeds."""
    calls = {"n": 0}

    @ft_task(breaker=fast_policy(name, failures=10**6), **options)
    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] <= fails:
            raise ConnectionError(f"model server connection refused ({calls['n']})")
        return calls["n"]

    @flow
    def run() -> str:
        return flaky(return_state=True).name

    return run


def _settled(name: str, start: float, rows: int) -> History:
    """History of `name` since `start`, once the run, its states and its logs are recorded."""

    def read() -> History:
        return read_history((name,), start, until=time.time())

    def done(h: History) -> bool:
        failed = h.batch.failed
        return len(h.batch) >= rows and bool(np.all(h.batch.failure_type[failed] == CONN))

    wait_for(lambda: task_runs(component=name), lambda r: r and r[0].end_time)
    return wait_for(read, done)


def test_each_failed_attempt_is_a_failed_row() -> None:
    name = unique("retry")
    start = time.time()
    assert _flaky_flow(name, fails=2, retries=2)() == "Completed"
    hist = _settled(name, start, 3)

    (run,) = task_runs(component=name)
    assert run.run_count == 3 and run.state_name == "Completed"
    assert hist.runs == 1 and hist.retried_runs == 1 and hist.failed_attempts == 2
    batch = hist.batch
    assert len(batch) == 3
    assert batch.failed.tolist() == [True, True, False]
    assert np.all(np.diff(batch.end) > 0)
    # classified from the engine's retry log line ("... exception: ConnectionError(...)")
    assert batch.failure_type.tolist() == [CONN, CONN, -1]
    # attempts do not overlap, and the run's own row is its last attempt only
    assert np.all(batch.start[1:] >= batch.end[:-1])
    assert batch.end[-1] == run.end_time.timestamp()
    assert batch.start[-1] > run.start_time.timestamp()


def test_attempts_with_a_retry_delay_end_at_awaiting_retry() -> None:
    name = unique("retry-delay")
    start = time.time()
    assert _flaky_flow(name, fails=2, retries=1, retry_delay_seconds=0.5)() == "Failed"
    hist = _settled(name, start, 2)
    batch = hist.batch
    assert len(batch) == 2 and batch.failed.tolist() == [True, True]
    assert batch.failure_type.tolist() == [CONN, CONN]
    # the first attempt ended at AwaitingRetry; the retry started after the delay
    assert batch.start[1] - batch.end[0] >= 0.4


def test_attempts_are_read_once_in_the_window_of_their_end() -> None:
    name = unique("retry-window")
    start = time.time()
    assert _flaky_flow(name, fails=2, retries=2, retry_delay_seconds=1.0)() == "Completed"
    whole = _settled(name, start, 3)
    ends = whole.batch.end.tolist()
    assert len(ends) == 3

    # a read whose window ended between the attempts: the run had not finished by then, so only
    # the first attempt belongs to it; the next read picks up from there, without repeats
    mid = (ends[0] + ends[1]) / 2
    first = read_history((name,), start, until=mid)
    second = read_history((name,), mid, until=whole.until)
    assert first.batch.end.tolist() == ends[:1] and first.batch.failed.tolist() == [True]
    assert first.failed_attempts == 1
    assert second.batch.end.tolist() == ends[1:]
    assert second.batch.failed.tolist() == [True, False]
    assert second.failed_attempts == 1


def test_a_run_still_retrying_contributes_its_failed_attempts() -> None:
    name = unique("retry-live")
    start = time.time()
    # long enough for the state and the engine's log line to reach the API before the retry
    run = _flaky_flow(name, fails=1, retries=1, retry_delay_seconds=15.0)
    thread = threading.Thread(target=run)
    thread.start()
    try:
        waiting = wait_for(lambda: task_runs(component=name, state_name="AwaitingRetry"), bool)
        assert waiting, "the run never reached AwaitingRetry"
        hist = wait_for(
            lambda: read_history((name,), start, until=time.time()),
            lambda h: len(h.batch) >= 1 and h.batch.failure_type[0] == CONN,
        )
        assert hist.batch.failed.tolist() == [True]
        assert hist.batch.failure_type.tolist() == [CONN]
    finally:
        thread.join(timeout=60)
    after = _settled(name, hist.until, 1)
    assert after.batch.failed.tolist() == [False]  # the attempt is not read a second time


def test_retried_runs_over_the_cap_are_reported() -> None:
    name = unique("retry-cap")
    start = time.time()
    assert _flaky_flow(name, fails=1, retries=1)() == "Completed"
    _settled(name, start, 2)
    capped = read_history((name,), start, until=time.time(), max_retried_runs=0)
    assert capped.batch.failed.tolist() == [False]
    assert capped.ignored.get("retried_runs_over_cap") == 1
    summary = detect_since(name, start, max_retried_runs=0)
    assert "retried_runs_over_cap" in {s["reason"] for s in summary["skipped"]}
    full = detect_since(name, start, "-full")
    assert full["retried_runs"] == 1 and full["failed_attempts"] == 1
    assert full["components"][name]["rows"] == 2 and full["components"][name]["failed"] == 1


def test_attempt_rows_from_plain_states() -> None:
    states = [
        ("COMPLETED", "Completed", 9.0),
        ("PENDING", "Pending", 0.0),
        ("RUNNING", "Running", 1.0),
        ("SCHEDULED", "AwaitingRetry", 2.0),  # attempt 1 failed; retry after a delay
        ("RUNNING", "Retrying", 4.0),
        ("RUNNING", "Retrying", 6.0),  # attempt 2 failed; retried at once
    ]
    failures = {2: ("TaskRunTimeoutError", "TaskRunTimeoutError('Task run exceeded 1s')")}
    rows, last = attempt_rows("r", "c", states, failures)
    assert [(r.start, r.end, r.duration) for r in rows] == [(1.0, 2.0, 1.0), (4.0, 6.0, 2.0)]
    assert [r.id for r in rows] == ["r#attempt-1", "r#attempt-2"]
    assert [r.state_name for r in rows] == ["Failed", "TimedOut"]
    assert rows[0].message is None and rows[1].exception_type == "TaskRunTimeoutError"
    assert last == 6.0
    assert attempt_rows("r", "c", states[:3]) == ([], 1.0)


def test_parse_retry_log() -> None:
    line = (
        "Task run failed with exception: ConnectionError('refused - Retry later') "
        "- Retry 2/3 will start 1.0 second(s) from now"
    )
    assert parse_retry_log(line) == (
        2,
        "ConnectionError",
        "ConnectionError('refused - Retry later')",
    )
    state = "Task run failed with state: Failed(message='bad') - Retry 1/1 will start immediately"
    assert parse_retry_log(state) == (1, None, "Failed(message='bad')")
    assert parse_retry_log("Task run failed with exception: X() - Retries are exhausted") is None


def test_retried_runs_of_other_components_are_neither_read_nor_counted() -> None:
    # the window and in-flight queries see every task run of the workspace; CI once counted
    # another test's retried run here (retried_runs 2 instead of 1)
    mine, other = unique("retry-mine"), unique("retry-other")
    start = time.time()
    assert _flaky_flow(other, fails=1, retries=1)() == "Completed"
    assert _flaky_flow(mine, fails=1, retries=1)() == "Completed"
    hist = _settled(mine, start, 2)
    assert hist.retried_runs == 1
    assert hist.failed_attempts == 1
    assert hist.batch.failed.tolist().count(True) == 1
