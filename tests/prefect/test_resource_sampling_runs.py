"""Sampled `ft_task` runs on the shared server, and the detection flow reading their samples.

The sampler is the real one (real readings of this process, the session's store); the test only
gives it a fake monotonic clock so "N seconds later" needs no sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest
from prefect import flow

from prefect_ft import ft_task
from prefect_ft.history import resources
from prefect_ft.history.reader import read_resource_samples
from prefect_ft.history.resources import ResourceSampler
from tests.conftest import FakeClock
from tests.prefect.helpers import detect_since, fast_policy, unique

REFUSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every store call fails


def _flow(name: str, flavour: str):
    policy = fast_policy(name, failures=10**6)
    if flavour == "async":

        @ft_task(breaker=policy)
        async def awork(n: int) -> int:
            return n

        @flow
        async def arun(n: int) -> list[str]:
            return [(await awork(i, return_state=True)).name for i in range(n)]

        return arun

    @ft_task(breaker=policy)
    def work(n: int) -> int:
        return n

    @flow
    def run(n: int) -> list[str]:
        return [work(i, return_state=True).name for i in range(n)]

    return run


def _call(fl, n: int) -> list[str]:
    out = fl(n)
    return asyncio.run(out) if inspect.isawaitable(out) else out


def _samples(name: str):
    return read_resource_samples((name,), None, time.time() + 60.0)


def test_task_runs_write_one_sample_per_interval(
    monkeypatch: pytest.MonkeyPatch, flavour: str
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(resources, "sampler", ResourceSampler(30.0, clock=clock))
    name = unique(f"sampled-{flavour}")
    fl = _flow(name, flavour)

    assert _call(fl, 3) == ["Completed"] * 3
    first = _samples(name)
    assert len(first) == 1  # three runs within the interval: one sample
    assert 1.0 < first.memory_mb[0] < first.memory_limit_mb[0]

    clock.advance(29.0)
    assert _call(fl, 2) == ["Completed"] * 2
    assert len(_samples(name)) == 1

    clock.advance(1.0)
    assert _call(fl, 1) == ["Completed"]
    assert len(_samples(name)) == 2


def test_a_broken_sample_store_does_not_fail_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = ResourceSampler(10.0, store=REFUSED)
    monkeypatch.setattr(resources, "sampler", sampler)
    name = unique("sampled-broken")
    assert _call(_flow(name, "sync"), 2) == ["Completed"] * 2
    assert sampler.failed == 1 and sampler.written == 0
    assert len(_samples(name)) == 0


def test_the_detection_flow_reads_the_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(resources, "sampler", ResourceSampler(10.0, clock=clock))
    name = unique("sampled-detect")
    start = time.time()
    fl = _flow(name, "sync")
    for _ in range(3):
        assert _call(fl, 1) == ["Completed"]
        clock.advance(10.0)
    assert len(_samples(name)) == 3
    time.sleep(0.01)  # the window ends after the last sample
    summary = detect_since(name, start)
    assert summary["resource_samples"] == 3
