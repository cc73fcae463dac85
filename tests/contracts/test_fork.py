"""A breaker inherited through fork() keeps refreshing (issue 8 item 7).

Fork is multiprocessing's default start method on Linux up to Python 3.13, so a worker pool
forked from a process that built a breaker inherits it. Threads do not survive fork, and a lock
another thread held at that moment stays locked: the child must restart its refresher and renew
those locks.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from prefect_ft import CircuitBreaker
from tests.waiting import DEADLINE_S

FORK = multiprocessing.get_context("fork")


def _child_waits_for(breaker: CircuitBreaker, state: str, go: Any, out: Any) -> None:
    try:
        go.wait(DEADLINE_S)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and breaker.state != state:
            time.sleep(0.01)
        out.put(breaker.state)
    except BaseException as exc:  # report instead of leaving the parent waiting
        out.put(f"{type(exc).__name__}: {exc}")


def _run_child(target: Any, *args: Any) -> Any:
    out = FORK.Queue()
    proc = FORK.Process(target=target, args=(*args, out))
    proc.start()
    try:
        return out.get(timeout=2 * DEADLINE_S)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()


@pytest.mark.parametrize("writer", ["parent", "other process"])
def test_forked_child_sees_a_transition_made_after_the_fork(writer: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    inherited = CircuitBreaker("forked", store=url, refresh_seconds=0.02)
    go = FORK.Event()
    out = FORK.Queue()
    child = FORK.Process(target=_child_waits_for, args=(inherited, "FORCED_OPEN", go, out))
    child.start()
    try:
        if writer == "parent":
            inherited.force_open()
        else:  # an operator's CLI in a third process: a fresh interpreter, as the CLI is (a fork
            # of this many-threaded test process could inherit a lock held by another thread)
            code = (
                "import sys; from prefect_ft import CircuitBreaker; "
                "CircuitBreaker('forked', store=sys.argv[1], refresh_seconds=None).force_open()"
            )
            done = subprocess.run([sys.executable, "-c", code, url], timeout=60, check=False)
            assert done.returncode == 0
        go.set()
        assert out.get(timeout=2 * DEADLINE_S) == "FORCED_OPEN"
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def _child_calls(breaker: CircuitBreaker, out: Any) -> None:
    try:
        with pytest.raises(ValueError):
            breaker.call(_fail)  # needs the breaker's lock and the store's
        out.put(breaker.record.consecutive_failures)
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def _fail() -> None:
    raise ValueError("boom")


def test_a_lock_held_by_another_thread_at_fork_is_free_in_the_child(tmp_path: Path) -> None:
    breaker = CircuitBreaker(
        "locked", store=f"sqlite:///{tmp_path / 'ft.db'}", refresh_seconds=None
    )
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with breaker._lock, breaker.store._lock:
            held.set()
            release.wait(2 * DEADLINE_S)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(DEADLINE_S)
        assert _run_child(_child_calls, breaker) == 1
    finally:
        release.set()
        holder.join()
