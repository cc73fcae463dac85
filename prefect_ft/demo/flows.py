"""`make demo`, part 2: fault-tolerant Prefect tasks on an embedded Prefect server (SQLite).

A flow calls a loopback "model server" through `ft_task` with the `ipc` breaker while the
server fails: the breaker trips, later task runs end in the `CircuitOpen` state (not Failed),
their inputs are dead-lettered, `prefect-ft.breaker.*` events are emitted, and once the server
is back `prefect_ft.replay` completes every rejected call exactly once. Everything printed is
read back from the Prefect API and the store, not from local counters.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Callable

__all__ = ["run"]


def run(url: str, set_healthy: Callable[[bool], None], say: Callable[[str], None]) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
    from prefect.events.filters import EventFilter, EventNameFilter

    from prefect_ft import DeadLetterQueue, FTPolicy, add_global_listener, ft_task, replay
    from prefect_ft.history.components import run_component
    from prefect_ft.presets import preset_config

    add_global_listener(
        lambda b, e: say(f"  breaker {b.name}: {e.from_state} -> {e.to_state} ({e.reason})")
    )
    # the ipc preset, with a 2 s open time so the demo takes seconds
    policy = FTPolicy("ipc", preset_config("ipc", open_seconds=2.0, recovery_seconds=1.0))

    @ft_task(breaker=policy, name="generate", task_run_name="generate-{doc_id}")
    def generate(doc_id: str) -> str:
        with urllib.request.urlopen(f"{url}?doc={doc_id}", timeout=2) as r:
            return r.read().decode()

    @flow(name="prefect-ft-demo", log_prints=False)
    def pipeline(docs: list[str]) -> dict[str, int]:
        # one document after another, so each call sees what the ones before it did
        states = [generate(d, return_state=True) for d in docs]
        return dict(Counter(s.name for s in states))

    say("flow 1: the model server is down; 20 documents")
    set_healthy(False)
    out = pipeline([f"ts-38.{300 + i}" for i in range(20)], return_state=True)
    say(f"flow 1 finished as {out.name}; task states: {out.result(raise_on_failure=False)}")

    time.sleep(2.5)  # task-run history reaches the API about a second after the events
    with get_client(sync_client=True) as client:
        flow_run = TaskRunFilterFlowRunId(any_=[out.state_details.flow_run_id])
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=flow_run), limit=200)
        # a guarded run names its component in its task_key (no tag: DESIGN §10)
        runs = [r for r in runs if run_component(r.task_key, r.tags) == "ipc"]
        say(f"task runs in the API by state: {dict(Counter(r.state_name for r in runs))}")
        page = client.read_events(
            filter=EventFilter(event=EventNameFilter(prefix=["prefect-ft.breaker."])), limit=50
        )
        names = Counter(e.event for e in page.events)
        say(f"prefect-ft events in the API: {dict(names)}")
    queue = DeadLetterQueue("ipc")
    pending = [i for i in queue.items() if i.status == "pending"]
    say(
        f"dead letters kept for replay: {len(pending)} (e.g. {pending[0].parameters if pending else None})"
    )

    say("the model server is back; replaying once the breaker closes")
    set_healthy(True)
    report = replay("ipc", wait_seconds=30)
    say(f"replay: {len(report.done)} done, {len(report.failed)} failed, {report.remaining} left")
    report = replay("ipc")
    say(f"second replay (must do nothing): {len(report.done)} done, {report.remaining} left")
    out = pipeline([f"ts-38.{400 + i}" for i in range(5)], return_state=True)
    say(f"flow 2 (server healthy): {out.result(raise_on_failure=False)}")
