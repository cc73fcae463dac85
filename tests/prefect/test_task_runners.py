"""`FaultTolerantTaskRunner`: Prefect's runner contract, policy matching, and the scenario on
thread and process pools."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from prefect import flow, task, unmapped
from prefect.cache_policies import NONE
from prefect.futures import PrefectConcurrentFuture
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from prefect_ft.deadletter.queue import DeadLetterQueue
from prefect_ft.deadletter.replay import replay
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.history.components import component_task_key
from prefect_ft.tasks.decorator import ft_task
from prefect_ft.tasks.policies import FTPolicy
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
    unique,
)
from tests.waiting import DEADLINE_S


@task
def plain_call(dep: str, x: int) -> int:
    return call_dependency(dep, x)


@task
async def aplain_call(dep: str, x: int) -> int:
    return call_dependency(dep, x)


@task(tags=["gpu"])
def tagged(x: int) -> int:
    return x


@task(cache_policy=NONE)
def breaker_seen(policy: FTPolicy, x: int) -> tuple[int, str]:
    """The breaker state as the worker process that ran this sees it (untagged: not guarded)."""
    import os

    from prefect_ft.tasks.gates import gate_for

    return os.getpid(), gate_for(policy).breaker.state


def until_every_worker_sees_open(policy: FTPolicy, workers: int) -> None:
    """Inside a flow: poll the workers until `workers` processes, in one round, all read OPEN.

    A fixed sleep of 3 refresh intervals was not enough on a loaded machine: a worker whose
    refresher ran late still read CLOSED, ran the next call, and the test saw Failed, not
    CircuitOpen. OPEN lasts 30 s here, so a worker that has read it keeps reading it.
    """
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        seen = [f.result() for f in breaker_seen.map(unmapped(policy), range(2 * workers))]
        if len({pid for pid, _ in seen}) >= workers and {s for _, s in seen} == {"OPEN"}:
            return
        time.sleep(0.05)


@pytest.fixture
def dep(tmp_path: Path) -> Dependency:
    d = Dependency(tmp_path / "dep")
    d.down()
    return d


# -- Prefect's runner contract --------------------------------------------------------------------
class RecordingRunner(ThreadPoolTaskRunner):
    """A real thread-pool runner that counts `cancel_all` calls."""

    cancelled = 0

    def duplicate(self) -> RecordingRunner:
        return RecordingRunner(max_workers=self._max_workers)

    def cancel_all(self) -> None:
        RecordingRunner.cancelled += 1
        super().cancel_all()


def test_duplicate() -> None:
    runner = FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=3), policies={"a": "ipc"})
    copy = runner.duplicate()
    assert copy == runner and copy is not runner
    assert copy.inner is not runner.inner and copy.policies is not runner.policies


def test_eq_compares_settings_only() -> None:
    a = FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=3), policies={"a": "ipc"})
    assert a == FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=3), {"a": "ipc"})
    assert a != FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=4), {"a": "ipc"})
    assert a != FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=3), {"a": "ml-inference"})
    assert a != FaultTolerantTaskRunner(ProcessPoolTaskRunner(max_workers=3), {"a": "ipc"})
    assert a != ThreadPoolTaskRunner(max_workers=3)
    procs = FaultTolerantTaskRunner(ProcessPoolTaskRunner(max_workers=2))
    assert procs == procs.duplicate()
    tagging = FaultTolerantTaskRunner(ProcessPoolTaskRunner(max_workers=2), tag_component=True)
    assert tagging != procs and tagging.duplicate() == tagging


def test_pickle_round_trip_keeps_settings_and_drops_runtime_state() -> None:
    policy = fast_policy(unique("pickled"))
    runner = FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=2), {"tag:gpu": policy})
    wrapped = runner.guarded(tagged)  # fills the per-process cache
    again = cloudpickle.loads(cloudpickle.dumps(runner))  # as Prefect ships a flow: unstarted
    assert again == runner and again._wrapped == {} and runner._wrapped
    assert cloudpickle.loads(cloudpickle.dumps(wrapped)).task_key == wrapped.task_key
    assert wrapped.task_key == component_task_key(tagged.task_key, policy.name)
    procs = FaultTolerantTaskRunner(ProcessPoolTaskRunner(max_workers=2), {"*": "ipc"})
    assert cloudpickle.loads(cloudpickle.dumps(procs)) == procs


def test_enter_exit_and_cancel_all_reach_the_inner_runner() -> None:
    runner = FaultTolerantTaskRunner(RecordingRunner(max_workers=2))
    with runner:
        assert runner._started and runner.inner._started
        before = RecordingRunner.cancelled
        runner.cancel_all()
        assert RecordingRunner.cancelled == before + 1
    assert not runner._started and not runner.inner._started
    with pytest.raises(RuntimeError, match="started"):
        runner.submit(tagged, {"x": 1})


def test_inner_futures_are_returned_unchanged() -> None:
    runner = FaultTolerantTaskRunner(policies={"tagged": fast_policy(unique("fut"))})

    @flow(task_runner=runner)
    def kinds() -> tuple[str, int, list[str]]:
        fut = tagged.submit(2)
        mapped = tagged.map([1, 2])
        return type(fut).__name__, fut.result(), [type(f).__name__ for f in mapped]

    assert kinds() == ("PrefectConcurrentFuture", 2, ["PrefectConcurrentFuture"] * 2)
    assert PrefectConcurrentFuture.__name__ == "PrefectConcurrentFuture"


# -- which tasks get which policy -----------------------------------------------------------------
def test_policy_keys_name_then_tag_then_star() -> None:
    by_name = fast_policy(unique("byname"))
    runner = FaultTolerantTaskRunner(
        policies={"tag:gpu": "ml-inference", "tagged": by_name, "*": "ipc", "plain_call": None}
    )
    assert runner.policy_for(tagged) is by_name
    assert runner.policy_for(tagged.with_options(name="other")) == "ml-inference"
    assert runner.policy_for(aplain_call) == "ipc"
    assert runner.policy_for(plain_call) is None
    with runner:
        assert runner.guarded(plain_call) is plain_call  # exempt: submitted as is
        wrapped = runner.guarded(tagged)
        assert runner.guarded(tagged) is wrapped  # cached
    # the component rides on the task_key, not on a tag (a tag costs a lease per run)
    assert wrapped.task_key == component_task_key(tagged.task_key, by_name.name)
    assert wrapped.name == tagged.name
    assert wrapped.tags == {"gpu"}
    assert tagged.tags == {"gpu"}  # the user's task is not modified


def test_ft_tasks_are_not_wrapped_twice() -> None:
    mine = ft_task(call_dependency, breaker=fast_policy(unique("own")))
    runner = FaultTolerantTaskRunner(policies={"*": "ipc"})
    assert runner.guarded(mine) is mine


@pytest.mark.parametrize(
    "policies", [{"": "ipc"}, {"tag:": "ipc"}, {"x": ""}, {"x": 3}, {3: "ipc"}]
)
def test_malformed_policies_fail_at_construction(policies: dict[Any, Any]) -> None:
    with pytest.raises(ConfigurationError):
        FaultTolerantTaskRunner(policies=policies)


def test_inner_must_be_a_task_runner() -> None:
    with pytest.raises(TypeError):
        FaultTolerantTaskRunner(inner=object())  # type: ignore[arg-type]
    assert isinstance(FaultTolerantTaskRunner(ThreadPoolTaskRunner).inner, ThreadPoolTaskRunner)


def test_unknown_policy_name_fails_the_flow(dep: Dependency) -> None:
    runner = FaultTolerantTaskRunner(policies={"plain_call": "no-such-policy-zz"})

    @flow(task_runner=runner)
    def uses_it() -> int:
        return plain_call.submit(dep.path, 1).result()

    state = uses_it(return_state=True)
    assert state.is_failed() and "no-such-policy-zz" in state.message


# -- the scenario through the runner --------------------------------------------------------------
@pytest.mark.parametrize("mode", ["submit", "map"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_plain_tasks_trip_dead_letter_and_replay(mode: str, flavour: str, dep: Dependency) -> None:
    policy = fast_policy(unique("runner"), open_seconds=TRIP_OPEN_SECONDS)
    t = plain_call if flavour == "sync" else aplain_call
    runner = FaultTolerantTaskRunner(policies={t.name: policy})
    states = run_flow(scenario_flow(mode, flavour, t, dep, task_runner=runner))
    assert_tripped_then_replayed(policy, dep, states)


def _multi_process_inner(kind: str) -> tuple[Any, str]:
    if kind == "process-pool":
        return ProcessPoolTaskRunner(max_workers=2), "PrefectConcurrentFuture"
    if importlib.util.find_spec("prefect_dask") is None:
        pytest.skip("prefect-dask is not installed")
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1}
    ), "PrefectDaskFuture"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["process-pool", "dask"])
def test_worker_processes_share_breaker_state_through_the_store(kind: str, dep: Dependency) -> None:
    inner, future_type = _multi_process_inner(kind)
    policy = fast_policy(unique(kind), failures=4, open_seconds=30)
    runner = FaultTolerantTaskRunner(inner, {"tag:ipc": policy})
    t = plain_call.with_options(tags=["ipc"])

    @flow(task_runner=runner)
    def in_processes() -> tuple[list[str], list[str], str]:
        first = t.map(dep=unmapped(dep.path), x=list(range(8)))
        first.wait()
        until_every_worker_sees_open(policy, workers=2)
        second = t.map(dep=unmapped(dep.path), x=list(range(8, 12)))
        second.wait()
        return (
            [f.state.name for f in first],
            [f.state.name for f in second],
            type(first[0]).__name__,
        )

    first, second, kind_seen = in_processes()
    assert kind_seen == future_type  # the inner runner's own futures
    counts = names_of(first + second)
    # the workers share one consecutive-failure count: 4 failures (a few more may race) trip it
    assert 4 <= counts["Failed"] < 8, counts
    assert second == ["CircuitOpen"] * 4
    kept = list(DeadLetterQueue(policy.name).items())
    assert len(kept) == counts["CircuitOpen"]

    dep.up()
    from prefect_ft.tasks.gates import gate_for

    gate_for(policy).breaker.reset()  # an operator closes it: replay in this process
    assert len(replay(policy.name).done) == len(kept)
    assert sorted(dep.served()) == sorted(i.parameters["x"] for i in kept)
