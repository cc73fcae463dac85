"""The resource sampler behind `ft_task`: real readings of this process into a real store.

No Prefect here (the guard emits Prefect events, which would start a server):
`tests/prefect/test_resource_sampling_runs.py` runs sampled `ft_task`s in flows on the shared
test server. Time between samples moves with a fake clock.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import pytest

from prefect_ft.exceptions import ConfigurationError
from prefect_ft.history import resources
from prefect_ft.history.reader import read_resource_samples
from prefect_ft.history.resources import (
    ResourceSampler,
    detected_memory_limit_mb,
    memory_limit_mb,
    rss_mb,
)
from prefect_ft.settings import resource_sample_seconds
from tests.conftest import FakeClock

REFUSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every store call fails


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ft.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _samples(name: str, store_url: str):
    return read_resource_samples((name,), None, time.time() + 60.0, store=store_url)


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_one_sample_per_interval_per_component(store_url: str, clock: FakeClock) -> None:
    sampler = ResourceSampler(30.0, store=store_url, clock=clock)
    assert sampler.maybe_sample("a")
    first = _samples("a", store_url)
    assert len(first) == 1
    assert 1.0 < first.memory_mb[0] < first.memory_limit_mb[0]
    assert first.memory_mb[0] == pytest.approx(rss_mb(), rel=0.5)
    assert first.memory_limit_mb[0] == pytest.approx(memory_limit_mb("a"))

    clock.advance(29.0)
    assert not sampler.maybe_sample("a")  # within the interval: nothing written
    assert sampler.maybe_sample("b")  # another component has its own interval
    assert len(_samples("a", store_url)) == 1 and len(_samples("b", store_url)) == 1

    _burn(0.3)
    clock.advance(1.0)
    assert sampler.maybe_sample("a")
    second = _samples("a", store_url)
    assert len(second) == 2 and second.ts[1] >= second.ts[0]
    # CPU since the previous sample of this process: it burnt CPU in between
    assert 0.0 < second.cpu_pct[1] <= 100.0
    assert sampler.written == 3 and sampler.failed == 0


def test_a_broken_store_never_raises_and_warns_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = ResourceSampler(10.0, store=REFUSED, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="prefect_ft.resources"):
        for _ in range(3):
            assert not sampler.maybe_sample("broken")
            clock.advance(10.0)
    assert sampler.failed == 3 and sampler.written == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "broken" in warnings[0].getMessage()


def test_zero_interval_turns_sampling_off(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("PREFECT_FT_RESOURCE_SAMPLE_SECONDS", "0")
    sampler = ResourceSampler(store=store_url)  # reads the setting at the first call
    assert not sampler.maybe_sample("off") and not sampler.maybe_sample("off")
    assert len(_samples("off", store_url)) == 0 and sampler.interval_s == 0.0
    monkeypatch.setenv("PREFECT_FT_RESOURCE_SAMPLE_SECONDS", "-1")
    with pytest.raises(ConfigurationError):
        resource_sample_seconds()
    assert not ResourceSampler(store=store_url).maybe_sample("x")  # a bad setting never raises


def test_memory_limit_comes_from_the_setting_else_the_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_FT_MEMORY_LIMIT_MB", raising=False)
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    detected = detected_memory_limit_mb()
    assert 0 < detected <= physical and memory_limit_mb("x") == detected

    monkeypatch.setenv("PREFECT_FT_MEMORY_LIMIT_MB", "2048")
    assert memory_limit_mb("x") == 2048.0
    monkeypatch.setenv("PREFECT_FT_MEMORY_LIMIT_MB", "ml-inference=12288, *=512")
    assert memory_limit_mb("ml-inference") == 12288.0 and memory_limit_mb("ipc") == 512.0
    monkeypatch.setenv("PREFECT_FT_MEMORY_LIMIT_MB", "ml-inference=12288")
    assert memory_limit_mb("ipc") == detected
    for bad in ("lots", "ipc=-1", "=5"):
        monkeypatch.setenv("PREFECT_FT_MEMORY_LIMIT_MB", bad)
        with pytest.raises(ConfigurationError):
            memory_limit_mb("ipc")


def test_the_hot_path_between_samples_is_cheap(
    monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    sampler = ResourceSampler(3600.0, store=store_url)
    monkeypatch.setattr(resources, "sampler", sampler)  # the sampler the guard calls
    assert resources.maybe_sample("comp-hot")  # the first call samples
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        resources.maybe_sample("comp-hot")
    per_call = (time.perf_counter() - t0) / n
    assert sampler.written == 1
    assert per_call < 20e-6, f"{per_call * 1e6:.1f} us per call"  # ~0.3 us on a laptop
    assert math.isfinite(per_call)
