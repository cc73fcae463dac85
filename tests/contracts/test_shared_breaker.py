"""Breakers shared by real processes through SQLite and Redis (research/resilience.md §7.2 T4, T8, T9)."""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import mp_workers
import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError
from prefect_ft.stores import open_store
from tests.waiting import DEADLINE_S

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("n", [4, 8])
def test_dead_dependency_sees_a_bounded_number_of_calls(
    shared_url: str, tmp_path: Path, n: int
) -> None:
    fail_max, k, t_run, w = 5, 1, 10.0, 2.0
    log = tmp_path / "dependency.log"
    cfg = mp_workers.config(failure_threshold=fail_max, open_seconds=w, half_open_calls=k)
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(n), ctx.Queue()
    args = (shared_url, f"dead-{n}", str(log), start, t_run, cfg, out)
    procs = [ctx.Process(target=mp_workers.hammer, args=args) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(r["other"] for r in results) == 0, results  # no store error ever reached a call
    starts = sorted(float(line.split()[0]) for line in log.read_text().splitlines())
    bound = fail_max + (n - 1) + k * math.ceil(t_run / w)
    assert len(starts) <= bound, (len(starts), bound, results)
    # After the first trip, every open window lets at most K probes through.
    later = starts[fail_max + n - 1 :]
    gaps = [b - a for a, b in itertools.pairwise(later)]
    assert all(g >= 0.9 * w for g in gaps), gaps
    assert sum(r["rejected"] for r in results) > 100


def test_a_killed_probers_lease_expires(shared_url: str, tmp_path: Path) -> None:
    ttl, refresh = 1.5, 0.2
    cfg = mp_workers.config(failure_threshold=1, open_seconds=0.3, probe_ttl_seconds=ttl)
    here = CircuitBreaker("lease", store=open_store(shared_url), **cfg)
    with pytest.raises(ConnectionError):
        here.call(lambda: (_ for _ in ()).throw(ConnectionError()))
    marker = tmp_path / "probe-started"
    proc = mp.get_context("spawn").Process(
        target=mp_workers.hang_as_prober, args=(shared_url, "lease", str(marker), cfg)
    )
    proc.start()
    try:
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the child never got the probe"
        probe_started = float(marker.read_text())
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.join(5)
        admitted_at = None
        while time.time() < probe_started + ttl + 5:
            try:
                here.call(lambda: None)
                admitted_at = time.time()
                break
            except CircuitOpenError:
                time.sleep(0.01)
        assert admitted_at is not None, "HALF_OPEN stayed stuck after the prober died"
        waited = admitted_at - probe_started
        assert ttl - 0.1 <= waited, waited  # the lease held until it expired ...
        # ... and not much longer: counted from its expiry, or from the kill when a loaded
        # machine saw the marker only after the lease had run out (then it is free at once)
        late = admitted_at - max(probe_started + ttl, killed_at)
        assert late <= refresh + 1.0, (waited, late)
        assert here.state in ("CLOSED", "RECOVERY")
    finally:
        if proc.is_alive():
            proc.kill()


def test_redis_outage_calls_go_on_and_state_converges(private_redis) -> None:
    url = private_redis.url
    cfg = mp_workers.config(failure_threshold=3, open_seconds=30.0)
    a = CircuitBreaker("outage", store=open_store(url), refresh_seconds=0.1, **cfg)
    b = CircuitBreaker("outage", store=open_store(url), refresh_seconds=0.1, **cfg)
    assert a.call(lambda: 1) == 1
    private_redis.stop()
    t0 = time.monotonic()
    for _ in range(3):
        with pytest.raises(ConnectionError):  # the dependency's error; no store error leaks
            a.call(lambda: (_ for _ in ()).throw(ConnectionError()))
    assert a.state == "OPEN" and not a.store_available
    with pytest.raises(CircuitOpenError):
        a.call(lambda: 1)
    assert b.call(lambda: 2) == 2  # b keeps working on its local view
    assert time.monotonic() - t0 < 2.0
    private_redis.start()  # same port, empty: the record was lost with the server
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and (b.state != "OPEN" or not a.store_available):
        time.sleep(0.05)
    assert a.store_available and b.store_available
    assert b.state == "OPEN"  # a's trip during the outage reached b through the restarted store
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 2)
