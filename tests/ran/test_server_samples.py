"""The model server's samples carry its own budget as their limit; a server that is down gives
none."""

from __future__ import annotations

import time

import pytest

from prefect_ft.demo.ran.server_samples import ServerSampler


def test_a_sample_is_the_servers_active_memory_against_its_budget() -> None:
    got: list[tuple] = []
    answers = iter([
        {"ok": True, "active_mb": 5.5, "memory_mb": 64.0},
        RuntimeError("connection refused"),  # crashed
        {"ok": False, "reason": "the model server process is not running"},
        {"ok": True, "active_mb": 5.0, "memory_mb": None},  # no budget: nothing to judge
    ])  # fmt: skip

    def read() -> dict:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    s = ServerSampler(read, lambda *row: got.append(row))
    assert [s.sample() for _ in range(4)] == [True, False, False, False]
    assert got == [("ml-inference", 5.5, 64.0)] and s.written == 1


def test_the_thread_samples_until_stopped() -> None:
    got: list[tuple] = []
    with ServerSampler(
        lambda: {"active_mb": 1.0, "memory_mb": 8.0}, lambda *r: got.append(r), interval_s=0.01
    ):
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    n = len(got)
    assert n >= 3
    time.sleep(0.05)
    assert len(got) == n  # stopped


def test_interval_is_checked() -> None:
    with pytest.raises(ValueError, match="interval_s: must be seconds > 0"):
        ServerSampler(dict, print, interval_s=0)
