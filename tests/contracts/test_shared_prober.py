"""One prober per breaker across real processes, and a readiness announcement reaching them all
(real processes, real Redis: `recovery.prober`'s lease, `recovery.readiness.announce_ready`)."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
import ready_workers

from prefect_ft import CircuitBreaker, announce_ready

pytestmark = pytest.mark.slow
RUNS = int(os.environ.get("PREFECT_FT_TEST_RUNS", "1"))  # 20 before a commit that changes it


def _checks(folder: Path) -> list[str]:
    log = folder / "checks.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("run", range(RUNS))
def test_three_processes_check_once_and_an_announcement_reopens_them_all(
    redis_server: str, tmp_path: Path, run: int
) -> None:
    import redis

    with redis.Redis.from_url(redis_server) as admin:
        admin.flushdb()
    name, n = f"ready-{run}", 3
    opener = CircuitBreaker(name, store=redis_server, refresh_seconds=None, failure_threshold=1)
    with pytest.raises(ConnectionRefusedError):
        opener.call(lambda: (_ for _ in ()).throw(ConnectionRefusedError()))
    assert opener.state == "OPEN"
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=ready_workers.probed, args=(redis_server, name, str(tmp_path), out))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    try:
        opened = [out.get(timeout=180) for _ in procs]
        assert all(m[0] == "open" and m[2] == "OPEN" for m in opened), opened
        deadline = time.monotonic() + 30  # every prober has looked (their first check is due now)
        while not _checks(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # room for a second or third prober to check, if the lease let it
        before = _checks(tmp_path)
        assert len(before) == 1, before  # one check for the open period, not one per process
        (tmp_path / "up").touch()  # the supervisor restarted it and its deep check passed
        announced = time.monotonic()
        assert announce_ready(name, store=redis_server)  # no breaker here: through the store
        left = [out.get(timeout=60) for _ in procs]
        took = time.monotonic() - announced
        assert all(m[0] == "left" and m[2] != "OPEN" for m in left), left
        assert took < 30, took  # without the announcement: 60 s to the next check
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join(10)
