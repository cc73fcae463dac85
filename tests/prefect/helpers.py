"""Shared pieces of the Prefect tests: unique names, fast policies, a dependency that can be
taken down from any process, and polling readers for the API's lagging history and events."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateName,
    TaskRunFilterTags,
)
from prefect.client.schemas.objects import TaskRun
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent

from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.deadletter.replay import current_replay
from prefect_ft.presets import preset_config
from prefect_ft.tasks.policies import FTPolicy

__all__ = [
    "Dependency",
    "call_dependency",
    "events",
    "fast_policy",
    "record_effect",
    "task_runs",
    "unique",
    "wait_for",
]

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A breaker/component name no other test uses (the store is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# the trip scenarios' open time: refused calls must all arrive while OPEN (see test_decorators)
TRIP_OPEN_SECONDS = 4.0


def fast_policy(
    name: str,
    *,
    failures: int = 8,
    open_seconds: float = 1.0,
    on_open: str = "fail",
    max_wait_seconds: float = 30.0,
    bulkhead: BulkheadConfig | None = None,
) -> FTPolicy:
    """The `ipc` preset (8 failures) under another name, with a short open time and no ramp."""
    from prefect_ft.core.conditions import ConsecutiveFailures

    config = replace(
        preset_config("ipc"),
        name=name,
        trip=ConsecutiveFailures(failures),
        open_seconds=open_seconds,
        max_open_seconds=max(open_seconds * 10, 10.0),
        recovery_seconds=0.0,
    )
    return FTPolicy(name, config, bulkhead, on_open, max_wait_seconds)  # type: ignore[arg-type]


class Dependency:
    """A dependency whose health is a file, so every process (and a replay) sees the same."""

    def __init__(self, root: Path) -> None:
        self.path = str(root)
        root.mkdir(parents=True, exist_ok=True)

    def down(self) -> None:
        Path(self.path, "down").touch()

    def up(self) -> None:
        Path(self.path, "down").unlink(missing_ok=True)

    def served(self) -> list[int]:
        """Inputs the dependency has served, in order."""
        log = Path(self.path, "served.log")
        return [int(x) for x in log.read_text().split()] if log.exists() else []


def call_dependency(dep: str, x: int) -> int:
    """Serve `x` (append it to the log) unless the dependency is down."""
    if Path(dep, "down").exists():
        raise ConnectionError(f"dependency {dep} is down")
    with open(Path(dep, "served.log"), "a") as f:
        f.write(f"{x}\n")
    return 2 * x


def record_effect(ledger: str, x: int) -> int:
    """A replayable call with a side effect made idempotent by the replay key.

    Every execution is logged in `runs`; the effect goes to `effects` only if no effect with this
    call's key exists yet (checked before acting), so re-running an in-doubt call is harmless.
    """
    info = current_replay()
    key = info.key if info is not None else f"live:{x}"
    con = sqlite3.connect(ledger, timeout=30, isolation_level=None)
    try:
        con.execute(
            "INSERT INTO runs (x, key, pid, in_doubt) VALUES (?, ?, ?, ?)",
            (x, key, os.getpid(), int(bool(info and info.in_doubt))),
        )
        time.sleep(float(os.environ.get("FT_TEST_EFFECT_SLEEP", "0")))
        if con.execute("SELECT 1 FROM effects WHERE key = ?", (key,)).fetchone() is None:
            con.execute("INSERT INTO effects (key, x, pid) VALUES (?, ?, ?)", (key, x, os.getpid()))
    finally:
        con.close()
    return x


def make_ledger(path: Path) -> str:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE runs (x INTEGER, key TEXT, pid INTEGER, in_doubt INTEGER)")
    con.execute("CREATE TABLE effects (key TEXT PRIMARY KEY, x INTEGER, pid INTEGER)")
    con.close()
    return str(path)


def wait_for(
    read: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0, every: float = 0.3
) -> T:
    """Poll `read()` until `done(value)`; returns the last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


def task_runs(
    *, tag: str | None = None, component: str | None = None, state_name: str | None = None
) -> list[TaskRun]:
    """Task runs with `tag`, guarded by `component` (found as history finds it) and in state
    `state_name`, all pages (the API returns at most 200 a call)."""
    from prefect_ft.history.components import run_component

    filt = TaskRunFilter(tags=TaskRunFilterTags(all_=[tag]) if tag is not None else None)
    if state_name is not None:
        filt.state = TaskRunFilterState(name=TaskRunFilterStateName(any_=[state_name]))
    out: list[TaskRun] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_task_runs(task_run_filter=filt, limit=200, offset=len(out))
            out.extend(page)
            if len(page) < 200:
                break
    if component is None:
        return out
    return [r for r in out if run_component(r.task_key, r.tags) == component]


def events(name: str, resource_id: str) -> list[ReceivedEvent]:
    """Events named `name` about `resource_id` (the API serves at most 50 a page)."""
    filt = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(id=[resource_id]),
    )
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=filt, limit=50)
        found = list(page.events)
        while page.next_page is not None:
            page = client.read_events_page(page.next_page)
            found.extend(page.events)
    return found


# -- the trip / dead-letter / replay scenario, shared by the decorator and runner tests ----------
N_FAIL, N_REFUSED = 8, 4


def scenario_flow(mode: str, flavour: str, task: Any, dep: Dependency, task_runner: Any = None):
    """A flow making `N_FAIL` calls that fail, then `N_REFUSED` that the breaker refuses.

    `mode` is how the task is called: "direct", "submit" (one at a time) or "map" (two batches).
    The flow returns the state name of every call, in order.
    """
    from prefect import flow, unmapped

    batches = [list(range(N_FAIL)), list(range(N_FAIL, N_FAIL + N_REFUSED))]

    def through_runner() -> list[Any]:
        states = []
        for xs in batches:
            if mode == "submit":
                for x in xs:
                    fut = task.submit(dep.path, x)
                    fut.wait()
                    states.append(fut.state)
            else:
                futs = task.map(dep=unmapped(dep.path), x=xs)
                futs.wait()
                states.extend(f.state for f in futs)
        return states

    options = {"task_runner": task_runner} if task_runner is not None else {}
    if flavour == "sync":

        @flow(**options)
        def scenario() -> list[str]:
            if mode == "direct":
                return [task(dep.path, x, return_state=True).name for xs in batches for x in xs]
            return [s.name for s in through_runner()]

        return scenario

    @flow(**options)
    async def ascenario() -> list[str]:
        if mode == "direct":
            return [(await task(dep.path, x, return_state=True)).name for xs in batches for x in xs]
        return [s.name for s in through_runner()]

    return ascenario


def run_flow(flow_obj: Any) -> Any:
    import asyncio
    import inspect

    out = flow_obj()
    return asyncio.run(out) if inspect.isawaitable(out) else out


def assert_tripped_then_replayed(policy: FTPolicy, dep: Dependency, states: list[str]) -> None:
    """The whole story after `scenario_flow`: history, event, dead letters, recovery, replay."""
    from prefect_ft.deadletter.queue import DeadLetterQueue
    from prefect_ft.deadletter.replay import replay
    from prefect_ft.tasks.events import breaker_resource_id
    from prefect_ft.tasks.gates import gate_for

    name = policy.name
    assert names_of(states) == {"Failed": N_FAIL, "CircuitOpen": N_REFUSED}, states
    refused = wait_for(
        lambda: task_runs(component=name, state_name="CircuitOpen"),
        lambda runs: len(runs) >= N_REFUSED,
    )
    assert len(refused) == N_REFUSED
    assert all(r.run_count == 1 for r in refused)  # never retried
    opened = wait_for(lambda: events("prefect-ft.breaker.opened", breaker_resource_id(name)), bool)
    assert len(opened) == 1
    related = {r.id: r.role for r in opened[0].related}
    assert related[f"prefect-ft.component.{name}"] == "component"

    queue = DeadLetterQueue(name)
    kept = list(queue.items())
    assert sorted(i.parameters["x"] for i in kept) == list(range(N_FAIL, N_FAIL + N_REFUSED))
    assert {i.status for i in kept} == {"pending"}
    assert all(i.rejected_by == "breaker" and "OPEN" in i.reason for i in kept)

    dep.up()
    breaker = gate_for(policy).breaker
    time.sleep(policy.breaker.open_seconds + 0.05)
    assert breaker.call(call_dependency, dep.path, -1) == -2  # the probe closes it
    assert breaker.state == "CLOSED"

    report = replay(name)
    assert sorted(report.done) == sorted(i.id for i in kept)  # count in == count out
    assert report.remaining == 0 and not report.failed
    served = dep.served()
    assert sorted(x for x in served if x >= N_FAIL) == list(range(N_FAIL, N_FAIL + N_REFUSED))
    assert all(queue.get(i.seq).status == "done" for i in kept)  # type: ignore[union-attr]


def names_of(states: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in states:
        out[s] = out.get(s, 0) + 1
    return out


def detect_since(name: str, start: float, key_suffix: str = "", **options: Any) -> dict[str, Any]:
    """Run the detection flow once over component `name` since `start` (no events, no artifact)."""
    from flows.detect_failures import detect_failures

    return detect_failures(
        components=[name],
        state_key=f"prefect-ft:detection:{name}{key_suffix}",
        lag_seconds=0.0,
        max_age_seconds=time.time() - start + 1.0,
        artifact_key=None,
        emit_events=False,
        **options,
    )
