"""Isolation in a flow: upstream opens -> dependents wait, then are dead-lettered `upstream-open`
-> the upstream recovers -> they replay; every input is served exactly once (in == out)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from prefect_ft.blocks import CircuitBreakerPolicy
from prefect_ft.deadletter.queue import DeadLetterQueue
from prefect_ft.deadletter.replay import replay
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.tasks.decorator import ft_task
from prefect_ft.tasks.gates import gate_for
from prefect_ft.tasks.isolation import deferred_now, hold, upstream_names
from prefect_ft.tasks.policies import clear_policy_cache, resolve_policy
from tests.prefect.helpers import Dependency, call_dependency, fast_policy, unique
from tests.waiting import DEADLINE_S

UP = unique("iso-up")
DOWN = unique("iso-down")
DEFER = 0.6
DOWN_POLICY = replace(fast_policy(DOWN), depends_on=(UP,), defer_seconds=DEFER)


@ft_task(breaker=DOWN_POLICY)
def score(dep: str, x: int) -> int:
    return call_dependency(dep, x)


@ft_task(breaker=DOWN_POLICY)
async def ascore(dep: str, x: int) -> int:
    return call_dependency(dep, x)


@flow
def pipeline(dep: str, xs: list[int]) -> list[str]:
    sync_states = score.map(dep, xs[::2], return_state=True)
    return [s.name for s in sync_states] + [s.name for s in asyncio.run(_async_part(dep, xs[1::2]))]


async def _async_part(dep: str, xs: list[int]) -> list:
    return await asyncio.gather(*(ascore(dep, x, return_state=True) for x in xs))


def test_dependents_wait_are_dead_lettered_then_replay_after_recovery(tmp_path: Path) -> None:
    CircuitBreakerPolicy(failure_threshold=1, open_seconds=120).save(UP, overwrite=True)
    clear_policy_cache()
    upstream = gate_for(resolve_policy(UP)).breaker
    with pytest.raises(RuntimeError):
        upstream.call(lambda: (_ for _ in ()).throw(RuntimeError("upstream down")))
    assert upstream.state == "OPEN"
    dep = Dependency(tmp_path / "dep")
    xs = list(range(8))

    started = time.monotonic()
    names = pipeline(dep.path, xs)
    elapsed = time.monotonic() - started
    assert names == ["CircuitOpen"] * len(xs)
    assert dep.served() == [], "no work was spent while the upstream was open"
    assert elapsed >= DEFER, "each call waited its bound before it was dead-lettered"
    queue = DeadLetterQueue(DOWN)
    items = list(queue.items())
    assert len(items) == len(xs)
    assert all(i.reason.startswith("upstream-open:") and UP in i.reason for i in items)
    assert {i.rejected_by for i in items} == {"upstream"}

    early = replay(DOWN)  # the dependent's own breaker is CLOSED, but its upstream is not
    assert early.done == [] and dep.served() == [] and early.remaining == len(xs)

    assert upstream.mark_recovered()  # stands in for a recovery flow that validated it
    report = replay(DOWN, wait_seconds=5)
    assert len(report.done) == len(xs) and report.remaining == 0
    assert sorted(dep.served()) == xs  # in == out, each exactly once


def test_a_call_goes_through_once_its_upstream_recovers_within_the_bound(tmp_path: Path) -> None:
    up, down = unique("iso-up2"), unique("iso-down2")
    CircuitBreakerPolicy(failure_threshold=1, open_seconds=120).save(up, overwrite=True)
    clear_policy_cache()
    upstream = gate_for(resolve_policy(up)).breaker
    with pytest.raises(RuntimeError):
        upstream.call(lambda: (_ for _ in ()).throw(RuntimeError("upstream down")))
    dep = Dependency(tmp_path / "dep")
    task = ft_task(
        call_dependency,
        breaker=replace(fast_policy(down), depends_on=(up,), defer_seconds=2 * DEADLINE_S),
    )

    @flow
    def one() -> int:
        return task(dep.path, 21)

    async def recover_while_it_waits() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while deferred_now(down) == 0:  # the call arrived and is waiting for its upstream
            assert time.monotonic() < deadline, "the call was never deferred"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert dep.served() == []
        await asyncio.to_thread(upstream.mark_recovered)

    async def main() -> int:
        recovering = asyncio.create_task(recover_while_it_waits())
        out = await asyncio.to_thread(one)
        await recovering
        return out

    assert asyncio.run(main()) == 42 and dep.served() == [21]
    assert list(DeadLetterQueue(down).items()) == []


def test_an_unknown_upstream_fails_the_run_with_a_one_line_reason() -> None:
    bad = replace(fast_policy(unique("iso-bad")), depends_on=(unique("ghost"),))
    with pytest.raises(ConfigurationError, match="depends on unknown component") as info:
        upstream_names(bad)
    assert "\n" not in str(info.value)


class _Site:
    """Stands in for the guard's site: records what would be dead-lettered."""

    def __init__(self) -> None:
        self.rejected: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def reject(self, gate: object, error: BaseException, args: tuple, kwargs: dict) -> str:
        with self.lock:
            self.rejected.append((args[0], str(error)))
        return "CircuitOpen"


# FT_REPEAT=20 runs it 20 times in one session (the rule for a new concurrency test)
@pytest.mark.parametrize("run", range(int(os.environ.get("FT_REPEAT", "1"))))
def test_the_defer_buffer_is_bounded_across_threads(run: int) -> None:
    up, down = unique("iso-up3"), unique("iso-down3")
    CircuitBreakerPolicy(failure_threshold=1, open_seconds=120).save(up, overwrite=True)
    upstream = gate_for(resolve_policy(up)).breaker
    with pytest.raises(RuntimeError):
        upstream.call(lambda: (_ for _ in ()).throw(RuntimeError("upstream down")))
    policy = replace(fast_policy(down), depends_on=(up,), defer_seconds=0.3, max_deferred=5)
    gate, site = gate_for(policy), _Site()
    start = threading.Barrier(20)

    def call(i: int) -> None:
        start.wait()
        assert hold(site, gate, (i,), {}) == "CircuitOpen"

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(i for i, _ in site.rejected) == list(range(20)), "every call dead-lettered once"
    full = [r for _, r in site.rejected if "5 calls already deferred" in r]
    waited = [r for _, r in site.rejected if "still open after 0.3 s" in r]
    assert (len(full), len(waited)) == (15, 5)
    assert all(r.startswith("upstream-open:") for _, r in site.rejected)
    assert deferred_now(down) == 0, "every waiting call gave its place back"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_dependent_called_inside_its_upstreams_admitted_call_does_not_wait_for_it(
    tmp_path: Path, mode: str
) -> None:
    # A dependent whose calls run inside its upstream's call (the RAN pipeline's ipc hop inside
    # an ml-inference call) used to wait on its own caller: with the upstream HALF_OPEN and its
    # one probe slot taken by that very caller, the inner call saw "not admitting", waited its
    # whole bound and was dead-lettered, so the probe failed and the upstream reopened.
    up, down = unique("iso-nest-up"), unique("iso-nest-down")
    CircuitBreakerPolicy(
        failure_threshold=1, open_seconds=120, half_open_calls=1, recovery_seconds=0
    ).save(up, overwrite=True)
    clear_policy_cache()
    upstream = gate_for(resolve_policy(up)).breaker
    with pytest.raises(RuntimeError):
        upstream.call(lambda: (_ for _ in ()).throw(RuntimeError("upstream down")))
    assert upstream.mark_recovered() and upstream.state == "HALF_OPEN"
    dep = Dependency(tmp_path / "dep")
    policy = replace(fast_policy(down), depends_on=(up,), defer_seconds=3)
    if mode == "sync":
        inner = ft_task(call_dependency, breaker=policy)

        def call_inner(dep: str, x: int) -> int:
            return inner(dep, x)

        outer = ft_task(call_inner, breaker=up)
    else:

        async def acall_dependency(dep: str, x: int) -> int:
            return call_dependency(dep, x)

        ainner = ft_task(acall_dependency, breaker=policy)

        async def acall_inner(dep: str, x: int) -> int:
            return await ainner(dep, x)

        outer = ft_task(acall_inner, breaker=up)

    @flow
    def nested() -> Any:
        out = outer(dep.path, 5, return_state=True)
        return asyncio.run(out) if mode == "async" else out

    state = nested()  # waiting for its own caller would dead-letter the inner call after 3 s
    assert state.name == "Completed", state
    assert dep.served() == [5]
    assert list(DeadLetterQueue(down).items()) == []
    assert upstream.state == "CLOSED"  # the probe (the outer call) succeeded
