"""`ft_task` on a real Prefect server (the session's `prefect_test_harness`)."""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from prefect import Task, flow, task, unmapped
from prefect.utilities.callables import parameter_schema

from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.deadletter.queue import DeadLetterQueue
from prefect_ft.deadletter.replay import replay
from prefect_ft.exceptions import CircuitOpenError, ConfigurationError
from prefect_ft.history.components import component_task_key
from prefect_ft.history.reader import read_history
from prefect_ft.tasks.decorator import FaultTolerantTask, ft_task
from prefect_ft.tasks.gates import gate_for
from prefect_ft.tasks.policies import resolve_policy
from prefect_ft.tasks.runner import FaultTolerantTaskRunner
from tests.prefect.helpers import (
    TRIP_OPEN_SECONDS,
    Dependency,
    assert_tripped_then_replayed,
    call_dependency,
    fast_policy,
    names_of,
    run_flow,
    scenario_flow,
    task_runs,
    unique,
    wait_for,
)
from tests.waiting import wait_until


@pytest.fixture
def dep(tmp_path: Path) -> Dependency:
    d = Dependency(tmp_path / "dep")
    d.down()
    return d


def make_task(flavour: str, breaker: Any, **options: Any) -> FaultTolerantTask[..., Any]:
    if flavour == "sync":

        def sync_dep_call(dep: str, x: int) -> int:
            return call_dependency(dep, x)

        return ft_task(sync_dep_call, breaker=breaker, **options)

    async def async_dep_call(dep: str, x: int) -> int:
        return call_dependency(dep, x)

    return ft_task(async_dep_call, breaker=breaker, **options)


@pytest.mark.parametrize("mode", ["direct", "submit", "map"])
def test_trip_dead_letter_and_replay(mode: str, flavour: str, dep: Dependency) -> None:
    # open long enough that the refused calls all land while OPEN, even when Prefect takes
    # 0.25 s per async submit on a loaded machine (1 s let a late call through as a probe)
    policy = fast_policy(unique("ipc"), open_seconds=TRIP_OPEN_SECONDS)
    states = run_flow(scenario_flow(mode, flavour, make_task(flavour, policy), dep))
    assert_tripped_then_replayed(policy, dep, states)


def test_ipc_preset_by_name(dep: Dependency) -> None:
    """`breaker="ipc"`: no block document of that name, so the preset: open after 8 failures."""
    t = ft_task(call_dependency, breaker="ipc")
    breaker = gate_for(resolve_policy("ipc")).breaker
    try:

        @flow
        def ipc_flow() -> list[str]:
            return [t(dep.path, x, return_state=True).name for x in range(10)]

        states = ipc_flow()
        assert states == ["Failed"] * 8 + ["CircuitOpen"] * 2
        assert resolve_policy("ipc").source == "preset:ipc"
        kept = list(DeadLetterQueue("ipc").items())
        assert len(kept) == states.count("CircuitOpen")
        dep.up()
        breaker.reset()  # an operator closes it (the preset stays open 5 s)
        assert len(replay("ipc").done) == len(kept)
    finally:
        breaker.reset()


# -- the Task it returns --------------------------------------------------------------------------
def fetch(doc_id: str, limit: int = 3, *, verbose: bool = False) -> list[str]:
    """Fetch a document."""
    return [doc_id] * limit


def test_is_a_real_task_with_the_functions_identity() -> None:
    t = ft_task(breaker="ipc", retries=2, name="fetcher", tags=["mine"], log_prints=True)(fetch)
    plain = task(fetch)
    assert isinstance(t, Task) and isinstance(t, FaultTolerantTask)
    assert (t.name, t.retries, t.log_prints) == ("fetcher", 2, True)
    assert t.tags == {"mine"}  # no component tag: any tag costs a concurrency lease per run
    assert t.description == "Fetch a document."
    assert inspect.signature(t.fn) == inspect.signature(fetch)
    assert parameter_schema(t.fn) == parameter_schema(fetch)
    # task_key: the plain function's, naming the component (distinct per function, stable
    # across processes) ...
    assert (
        t.task_key
        == component_task_key(plain.task_key, "ipc")
        == plain.task_key + "|ft:component:ipc"
    )
    again = cloudpickle.loads(cloudpickle.dumps(t.with_options(name="f2")))
    assert again.task_key == t.task_key and again.name == "f2"
    own = ft_task(fetch, breaker=fast_policy(unique("fetch")))
    assert cloudpickle.loads(cloudpickle.dumps(own)).fn("d", 1) == ["d"]

    # ... and not the shared wrapper's: two guarded functions never share a key
    def other(doc_id: str) -> str:
        return doc_id

    assert ft_task(other, breaker="ipc").task_key != t.task_key


def test_async_function_gives_an_async_task() -> None:
    async def agen(x: int) -> int:
        return x

    t = ft_task(agen, breaker="ipc")
    assert t.isasync and inspect.iscoroutinefunction(t.fn)
    assert asyncio.run(t.fn(3)) == 3


def test_with_options_keeps_the_component_and_the_veto() -> None:
    t = ft_task(fetch, breaker="ipc")
    seen: list[str] = []

    def mine(task_: Any, run: Any, state: Any) -> bool:
        seen.append(state.name)
        return True

    u = t.with_options(tags=["x"], retry_condition_fn=mine, retries=1)
    assert isinstance(u, FaultTolerantTask)
    assert u.tags == {"x"} and u.task_key == t.task_key

    class S:
        def __init__(self, name: str) -> None:
            self.name = name

    assert u.retry_condition_fn(u, None, S("CircuitOpen")) is False
    assert u.retry_condition_fn(u, None, S("Failed")) is True and seen == ["Failed"]


def test_the_component_tag_is_opt_in_and_kept_by_with_options() -> None:
    t = ft_task(fetch, breaker="ipc", tags=["mine"], tag_component=True)
    assert t.tags == {"mine", "ft:component:ipc"}
    assert t.with_options(tags=["x"]).tags == {"x", "ft:component:ipc"}
    assert t.with_options(name="n").tags == {"mine", "ft:component:ipc"}
    runner = FaultTolerantTaskRunner(policies={"*": "ipc"}, tag_component=True)
    assert runner.guarded(task(fetch)).tags == {"ft:component:ipc"}
    with pytest.raises(TypeError, match="tag_component must be True or False"):
        ft_task(fetch, breaker="ipc", tag_component="yes")


def untagged_call(dep: str, x: int) -> int:
    return call_dependency(dep, x)


def test_runs_carry_no_tag_and_history_groups_them_by_component(dep: Dependency) -> None:
    """Neither ft_task nor the runner tags a run (a tag costs a concurrency lease per run), and
    history still finds each run's component."""
    a, b = fast_policy(unique("key-a"), failures=100), fast_policy(unique("key-b"), failures=100)
    by_decorator = ft_task(call_dependency, breaker=a)
    plain = task(untagged_call)

    @flow(task_runner=FaultTolerantTaskRunner(policies={"untagged_call": b}))
    def both() -> None:
        by_decorator.map(unmapped(dep.path), [1, 2, 3]).wait()
        plain.map(unmapped(dep.path), [4, 5]).wait()
        dep.up()
        by_decorator.submit(dep.path, 6).wait()
        plain.submit(dep.path, 7).wait()
        plain(dep.path, 8)  # a direct call never reaches the runner: not guarded

    start = time.time()
    both(return_state=True)
    runs = wait_for(
        lambda: task_runs(component=a.name) + task_runs(component=b.name),
        lambda rs: len(rs) == 7 and all(r.end_time for r in rs),
    )
    assert len(runs) == 7
    assert [r.tags for r in runs] == [[]] * 7
    history = read_history((a.name, b.name), start, until=time.time())
    comp = history.batch.component
    assert np.bincount(comp, minlength=2).tolist() == [4, 3]
    assert np.bincount(comp[history.batch.failed], minlength=2).tolist() == [3, 2]
    assert history.ignored.get("unguarded", 0) >= 1  # the direct call


def test_rejects_a_task_and_generators() -> None:
    with pytest.raises(TypeError, match="not a Task"):
        ft_task(task(fetch), breaker="ipc")

    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        ft_task(gen, breaker="ipc")
    with pytest.raises(ConfigurationError):
        ft_task(fetch, breaker="")


# -- behaviour inside flows -----------------------------------------------------------------------
def test_unknown_policy_fails_the_flow_not_the_import(dep: Dependency) -> None:
    t = ft_task(breaker="no-such-policy-xq")(call_dependency)  # no error here

    @flow
    def uses_it() -> int:
        return t(dep.path, 1)

    state = uses_it(return_state=True)
    assert state.is_failed()
    assert "no-such-policy-xq" in state.message and "preset" in state.message


def test_direct_call_raises_circuit_open(dep: Dependency) -> None:
    policy = fast_policy(unique("direct"), failures=2, open_seconds=30)
    t = ft_task(call_dependency, breaker=policy)

    @flow
    def direct() -> str:
        for x in range(2):
            try:
                t(dep.path, x)
            except ConnectionError:
                pass
        try:
            t(dep.path, 99)
        except CircuitOpenError as exc:
            return f"{exc.breaker} {exc.retry_after:.0f}"
        return "not refused"

    assert direct() == f"{policy.name} 30"
    assert [i.parameters for i in DeadLetterQueue(policy.name).items()] == [
        {"dep": dep.path, "x": 99}
    ]

    @flow
    def uncaught() -> int:
        return t(dep.path, 100)

    state = uncaught(return_state=True)
    assert state.is_failed() and policy.name in state.message and "retry after" in state.message


def test_retries_count_each_attempt_and_are_vetoed_when_open(flavour: str, dep: Dependency) -> None:
    policy = fast_policy(unique("retry"), failures=2, open_seconds=30)
    t = make_task(flavour, policy, retries=3, retry_delay_seconds=0)

    @flow
    def twice() -> list[str]:
        return [t.submit(dep.path, x).wait() or "" for x in (1, 2)]

    twice()
    runs = wait_for(
        lambda: task_runs(component=policy.name),
        lambda rs: len(rs) == 2 and all(r.state_name == "CircuitOpen" for r in rs),
    )
    by_count = sorted(r.run_count for r in runs)
    # first run: 2 failing attempts open the breaker, the 3rd attempt is refused, no 4th;
    # second run: refused at once, not retried
    assert by_count == [1, 3], [(r.state_name, r.run_count) for r in runs]
    assert len(list(DeadLetterQueue(policy.name).items())) == 2


def test_user_retry_condition_is_still_honoured(dep: Dependency) -> None:
    policy = fast_policy(unique("cond"), failures=100)
    asked: list[str] = []

    def never(task_: Any, run: Any, state: Any) -> bool:
        asked.append(state.name)
        return False

    def always(task_: Any, run: Any, state: Any) -> bool:
        return True

    no = ft_task(call_dependency, breaker=policy, retries=2, retry_condition_fn=never)
    yes = ft_task(call_dependency, breaker=policy, retries=2, retry_condition_fn=always)
    yes = yes.with_options(name="yes")

    @flow
    def both() -> None:
        no.submit(dep.path, 1).wait()
        yes.submit(dep.path, 2).wait()

    both()
    runs = wait_for(
        lambda: task_runs(component=policy.name, state_name="Failed"),
        lambda rs: len(rs) == 2,
    )
    assert sorted((r.name.split("-")[0], r.run_count) for r in runs) == [
        ("call_dependency", 1),
        ("yes", 3),
    ]
    assert asked == ["Failed"]
    assert gate_for(policy).breaker.record.consecutive_failures == 4  # every attempt counted


def test_on_open_wait_blocks_until_admitted(flavour: str, dep: Dependency) -> None:
    policy = fast_policy(unique("wait"), failures=2, open_seconds=1.0, on_open="wait")
    t = make_task(flavour, policy)

    @flow
    def waits() -> tuple[list[str], float]:
        first = [t.submit(dep.path, x) for x in (1, 2)]
        [f.wait() for f in first]
        dep.up()
        start = time.monotonic()
        late = t.submit(dep.path, 3)
        late.wait()
        return [f.state.name for f in [*first, late]], time.monotonic() - start

    names, waited = waits()
    assert names == ["Failed", "Failed", "Completed"]
    assert 0.5 < waited < 10
    assert list(DeadLetterQueue(policy.name).items()) == []


def test_on_open_wait_gives_up_when_the_breaker_reopens_too_late(dep: Dependency) -> None:
    policy = fast_policy(
        unique("nowait"), failures=1, open_seconds=60, on_open="wait", max_wait_seconds=0.5
    )
    t = ft_task(call_dependency, breaker=policy)

    @flow
    def gives_up() -> list[str]:
        return [t(dep.path, x, return_state=True).name for x in (1, 2)]

    start = time.monotonic()
    assert gives_up() == ["Failed", "CircuitOpen"]
    assert time.monotonic() - start < 20


def test_full_bulkhead_ends_in_bulkhead_full_and_is_replayed(dep: Dependency) -> None:
    name = unique("bulk")
    policy = fast_policy(name, bulkhead=BulkheadConfig(name, max_concurrent=1, max_wait_seconds=0))
    dep.up()

    @ft_task(breaker=policy)
    def slow(dep: str, x: int) -> int:
        # hold the one slot until the other two were refused (dead-lettered): a fixed 1 s hold
        # ended before a loaded machine had started them, and a second call then completed
        wait_until(lambda: len(list(DeadLetterQueue(name).items())) >= 2)
        return call_dependency(dep, x)

    @flow
    def crowd() -> list[str]:
        futs = slow.map(dep=[dep.path] * 3, x=[1, 2, 3])
        futs.wait()
        return [f.state.name for f in futs]

    assert names_of(crowd()) == {"Completed": 1, "BulkheadFull": 2}
    kept = list(DeadLetterQueue(name).items())
    assert len(kept) == 2 and {i.rejected_by for i in kept} == {"bulkhead"}
    assert len(replay(name).done) == 2
    assert sorted(dep.served()) == [1, 2, 3]


def test_policy_change_rebuilds_the_breaker_and_keeps_shared_state(dep: Dependency) -> None:
    name = unique("reload")
    first = fast_policy(name, failures=1, open_seconds=30)
    breaker = gate_for(first).breaker
    assert gate_for(fast_policy(name, failures=1, open_seconds=30)).breaker is breaker
    with pytest.raises(ConnectionError):
        breaker.call(call_dependency, dep.path, 1)
    assert breaker.state == "OPEN"
    changed = gate_for(fast_policy(name, failures=5, open_seconds=30)).breaker
    assert changed is not breaker and changed.config.trip != breaker.config.trip
    assert changed.state == "OPEN"  # read back from the shared store


def test_block_edit_is_picked_up_without_a_redeploy(
    dep: Dependency, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_ft.blocks import CircuitBreakerPolicy

    name = unique("blockpolicy")
    CircuitBreakerPolicy(failure_threshold=2, open_seconds=30).save(name)
    monkeypatch.setenv("PREFECT_FT_CACHE_TTL", "0")  # re-read the document on every resolve
    t = ft_task(call_dependency, breaker=name)
    dep.up()
    assert t.fn(dep.path, 1) == 2
    first = gate_for(resolve_policy(name)).breaker
    assert first.config.trip.threshold == 2 and resolve_policy(name).source.startswith("block:")
    CircuitBreakerPolicy(failure_threshold=5, open_seconds=30).save(name, overwrite=True)
    time.sleep(1.1)  # a guarded function asks the resolver at most once a second
    assert t.fn(dep.path, 2) == 4
    second = gate_for(resolve_policy(name)).breaker
    assert second is not first and second.config.trip.threshold == 5
    assert t.fn.__prefect_ft_site__.gate().breaker is second  # the task's own gate moved on
