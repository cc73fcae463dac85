"""The history reader keeps task runs that are still RUNNING (started, no end time).

A stage that hangs shows only as runs in flight: before, `read_history` asked the API for
COMPLETED, FAILED and CRASHED runs by end time and dropped any run without one, so a hung
stage's runs never reached the engine (`prefect_ft.detection.hang`).
"""

from __future__ import annotations

import threading
import time

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Crashed

from prefect_ft import ft_task
from prefect_ft.history.reader import read_history
from tests.prefect.helpers import fast_policy, task_runs, unique, wait_for


def test_read_history_returns_the_runs_still_running() -> None:
    name, other = unique("hang"), unique("hang-other")
    release = threading.Event()

    @ft_task(breaker=fast_policy(name, failures=10**6))
    def stuck_call() -> int:
        release.wait(60.0)  # a call with no timeout to a server that does not answer
        return 1

    @ft_task(breaker=fast_policy(other, failures=10**6))
    def quick_call() -> int:
        return 1

    @flow
    def pipeline() -> int:
        quick_call()
        return stuck_call()

    before = time.time()
    worker = threading.Thread(target=pipeline, daemon=True)
    worker.start()
    try:
        runs = wait_for(
            lambda: task_runs(component=name, state_name="Running"), lambda r: len(r) == 1
        )
        assert len(runs) == 1, "the stuck task run never showed as Running"
        started = runs[0].start_time.timestamp()
        wait_for(lambda: task_runs(component=other), lambda r: len(r) == 1)
        until = time.time()
        hist = read_history((name, other), before - 1.0, until=until)
        # the finished run is a row; the stuck one is a run in flight, with its start
        assert len(hist.batch) == 1 and hist.batch.components[hist.batch.component[0]] == other
        assert hist.running is not None and len(hist.running) == 1
        assert hist.running.components[hist.running.component[0]] == name
        assert abs(float(hist.running.start[0]) - started) < 1.0
        # a run that starts after the window's end is not in flight in it
        early = read_history((name, other), before - 1.0, until=started - 0.5)
        assert early.running is not None and len(early.running) == 0
        # a task run its ended flow run left RUNNING (a crashed process) is no work in flight
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(runs[0].flow_run_id, Crashed(), force=True)
        orphan = read_history((name, other), before - 1.0, until=time.time())
        assert orphan.running is not None and len(orphan.running) == 0
        assert orphan.ignored.get("running_orphans") == 1
    finally:
        release.set()
        worker.join(30.0)
