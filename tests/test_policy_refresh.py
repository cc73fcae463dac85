"""One re-read per expired policy, however many threads ask (found by benchmarks/prefect_overhead.py:
8 worker threads each re-read both block documents when the TTL had expired, 16 API requests in
a flow of 20 task runs)."""

from __future__ import annotations

import threading

import pytest

from prefect_ft.presets import preset_config
from prefect_ft.tasks import policies
from prefect_ft.tasks.policies import FTPolicy, PolicyResolver


def test_an_expired_policy_is_re_read_once_while_others_use_the_last_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    resolver = PolicyResolver(clock=lambda: now[0])
    first, edited = (FTPolicy("ipc", preset_config("ipc", open_seconds=s)) for s in (5.0, 7.0))
    reads: list[str] = []
    reading, release = threading.Event(), threading.Event()

    def read(name: str) -> FTPolicy:
        reads.append(threading.current_thread().name)
        if len(reads) == 1:
            return first
        if len(reads) == 2:  # the first re-read stays in flight until released
            reading.set()
            assert release.wait(10), "the test never released the reader"
        return edited

    monkeypatch.setattr(policies, "_read_sync", read)
    assert resolver.resolve("ipc", ttl=10.0) is first
    now[0] = 11.0  # expired: the next caller re-reads
    results: list[FTPolicy] = []
    reader = threading.Thread(target=lambda: results.append(resolver.resolve("ipc", ttl=10.0)))
    reader.start()
    assert reading.wait(10)
    # while that read is in flight, other callers get the last policy at once and read nothing
    meanwhile = [resolver.resolve("ipc", ttl=10.0) for _ in range(5)]
    release.set()
    reader.join(10)
    assert [p is first for p in meanwhile] == [True] * 5 and len(reads) == 2, reads
    assert results == [edited]
    assert resolver.resolve("ipc", ttl=10.0) is edited  # fresh again: no read
    assert len(reads) == 2
