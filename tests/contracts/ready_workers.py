"""Child-process code of the shared prober / readiness test (importable under 'spawn')."""

from __future__ import annotations

import os
import time
from pathlib import Path

from prefect_ft import CircuitBreaker


def probed(url: str, name: str, folder: str, out) -> None:  # type: ignore[no-untyped-def]
    """Hold breaker `name` with a health check (logged per call; healthy once `up` exists),
    report when it is OPEN here, then when it left OPEN (or that it never did)."""
    log, up = Path(folder) / "checks.log", Path(folder) / "up"

    def check() -> bool:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{time.time():.6f} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        if not up.exists():
            raise ConnectionRefusedError("down")
        return True

    breaker = CircuitBreaker(
        name,
        store=url,
        refresh_seconds=0.05,
        failure_threshold=1,
        open_seconds=120.0,
        health_check=check,
        probe_interval_seconds=60.0,  # nothing but an announcement ends this outage within 30 s
        recovery_seconds=0.0,
    )
    deadline = time.monotonic() + 60
    while breaker.state != "OPEN" and time.monotonic() < deadline:
        time.sleep(0.01)
    out.put(("open", os.getpid(), breaker.state))
    deadline = time.monotonic() + 90
    while breaker.state == "OPEN" and time.monotonic() < deadline:
        time.sleep(0.01)
    out.put(("left", os.getpid(), breaker.state))
