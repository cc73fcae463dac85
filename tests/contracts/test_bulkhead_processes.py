"""Shared bulkheads across real processes (spawned), over SQLite and a real Redis server.

Child code lives in `bulkhead_workers` (top-level: tests/contracts has no `__init__.py`). Holders
log wall-clock `start`/`end` lines with O_APPEND while they hold a permit; the tests count how
many were inside at once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import bulkhead_workers
import pytest

from prefect_ft.bulkhead.permits import Bulkhead
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.exceptions import BulkheadFullError

pytestmark = pytest.mark.slow


def most_inside(log: Path) -> int:
    """The most lease holders between a `start` and its `end` at any moment."""
    events = []
    for line in log.read_text().splitlines():
        stamp, kind, how = line.split()
        if how == "leased":  # a permit had while the store timed out holds no lease
            # at equal times an `end` comes first: it was written before its holder released
            events.append((float(stamp), 0 if kind == "end" else 1))
    inside = most = 0
    for _, is_start in sorted(events):
        inside += 1 if is_start else -1
        most = max(most, inside)
    assert inside == 0, "a holder never logged its end"
    return most


def attempt(bulkhead: Bulkhead) -> bool | None:
    """One try without waiting, released at once: True (a lease was free), False (full).

    None: the store did not answer in time (a loaded machine), so the process-local limit
    alone decided; such a try says nothing about the leases.
    """
    try:
        with bulkhead.permit():
            return True if bulkhead.store_available else None
    except BulkheadFullError:
        return False


@pytest.fixture
def retry_store_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a store timeout, the next try goes to the store again (default: 5 s later)."""
    import prefect_ft.bulkhead.leases as driver

    monkeypatch.setattr(driver, "_STORE_RETRY_SECONDS", 0.0)


def test_four_processes_never_hold_more_than_max_concurrent(
    shared_url: str, tmp_path: Path
) -> None:
    log, calls = tmp_path / "holders.log", 25
    cfg = {"max_concurrent": 2, "max_wait_seconds": 60.0, "lease_seconds": 30.0}
    start_at = time.time() + 4.0  # spawned interpreters need a moment to import
    with mp.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(
            bulkhead_workers.hold_many,
            [(shared_url, "four", str(log), start_at, calls, 0.01, cfg)] * 4,
        )
    assert [(r["held"], r["full"], r["other"]) for r in results] == [(calls, 0, 0)] * 4
    assert sum(r["local"] for r in results) < calls  # nearly every permit was a lease
    assert most_inside(log) == 2


@pytest.mark.usefixtures("retry_store_at_once")
def test_a_killed_holder_frees_its_slot_after_the_lease(shared_url: str, tmp_path: Path) -> None:
    # renewed every lease / 3: after the kill at least 2/3 of it is left for the first attempt
    # below, which a loaded machine may make a second late (a 1 s lease left only 0.67 s)
    lease = 2.0
    cfg = {"max_concurrent": 1, "max_wait_seconds": 0, "lease_seconds": lease}
    here = Bulkhead(BulkheadConfig("killed", scope="shared", **cfg), store=shared_url)
    marker = tmp_path / "holding"
    proc = mp.get_context("spawn").Process(
        target=bulkhead_workers.hold_forever, args=(shared_url, "killed", str(marker), cfg)
    )
    proc.start()
    try:
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the child never got the permit"
        asked = float(marker.read_text().split()[0])
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(5)
        killed_at = time.time()
        assert attempt(here) is not True, "the dead holder's lease was gone at once"
        while attempt(here) is not True and time.time() < killed_at + lease + 5:
            time.sleep(0.02)
        admitted_at = time.time()
        # the lease was written after `asked`, and lasts `lease` from its last renewal
        assert asked + lease - 0.02 <= admitted_at <= killed_at + lease + 1.0
    finally:
        if proc.is_alive():
            proc.kill()


@pytest.mark.usefixtures("retry_store_at_once")
def test_a_long_holder_keeps_its_slot_past_the_lease(shared_url: str, tmp_path: Path) -> None:
    lease, hold = 1.0, 3.5  # the background renewal must carry it over three lease lengths
    cfg = {"max_concurrent": 1, "max_wait_seconds": 0, "lease_seconds": lease}
    here = Bulkhead(BulkheadConfig("long", scope="shared", **cfg), store=shared_url)
    marker = tmp_path / "holding"
    proc = mp.get_context("spawn").Process(
        target=bulkhead_workers.hold_long, args=(shared_url, "long", str(marker), hold, cfg)
    )
    proc.start()
    try:
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.01)
        tries: list[tuple[float, bool | None]] = []
        while proc.is_alive() and time.time() < deadline:
            tries.append((time.time(), attempt(here)))
            time.sleep(0.02)
        proc.join(5)
        started, ended = (float(x) for x in marker.read_text().split())
        during = [ok for t, ok in tries if started < t and t + 0.01 < ended and ok is not None]
        assert len(during) > 50 and not any(during), "a renewed lease was taken"
        assert attempt(here) is True
    finally:
        if proc.is_alive():
            proc.kill()


@pytest.mark.usefixtures("retry_store_at_once")
def test_a_redis_outage_falls_back_to_the_local_limit(private_redis) -> None:
    cfg = BulkheadConfig(
        "outage", scope="shared", max_concurrent=1, max_wait_seconds=0, lease_seconds=30
    )
    bulkhead = Bulkhead(cfg, store=private_redis.url)
    assert attempt(bulkhead) is True
    private_redis.stop()
    with bulkhead.permit():  # no store error reaches the caller
        assert not bulkhead.store_available
        assert attempt(bulkhead) is False  # this process alone still keeps the limit
    private_redis.start()  # same port, empty
    with bulkhead.permit():
        assert bulkhead.store_available and bulkhead.available == 0
    assert bulkhead.available == 1
