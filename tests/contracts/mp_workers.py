"""Code that runs in child processes of the shared-breaker tests (importable under 'spawn')."""

from __future__ import annotations

import os
import time

from prefect_ft import CircuitBreaker, CircuitOpenError


def config(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "failure_threshold": 5,
        "open_seconds": 2.0,
        "open_multiplier": 1.0,
        "half_open_calls": 1,
        "probe_ttl_seconds": 5.0,
    }
    base.update(kw)
    return base


def record_call(log_path: str) -> None:
    """Append this call's start time to the dependency's log (O_APPEND: one write, atomic)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{time.time():.6f} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def hammer(url: str, name: str, log_path: str, start, seconds: float, cfg: dict, out) -> None:  # type: ignore[no-untyped-def]
    """Call a dead dependency through the shared breaker as fast as possible for `seconds`.

    `start` is a multiprocessing barrier: every process begins together once all are ready,
    however long their interpreters took to start. The tally goes to the queue `out`.
    """
    breaker = CircuitBreaker(name, store=url, **cfg)

    @breaker
    def dead_dependency() -> None:
        record_call(log_path)
        time.sleep(0.02)
        raise ConnectionError("the dependency is down")

    start.wait(120)
    tally = {"failed": 0, "rejected": 0, "other": 0}
    end = time.time() + seconds
    while time.time() < end:
        try:
            dead_dependency()
        except ConnectionError:
            tally["failed"] += 1
        except CircuitOpenError:
            tally["rejected"] += 1
            time.sleep(0.002)
        except Exception:  # a store error reaching the call would land here
            tally["other"] += 1
    out.put(tally)


def hang_as_prober(url: str, name: str, marker: str, cfg: dict) -> None:
    """Take the half-open probe and hang inside it until killed."""
    breaker = CircuitBreaker(name, store=url, **cfg)

    @breaker
    def probe() -> None:
        # written whole, then renamed: the parent polls for the file and reads it at once
        with open(f"{marker}.tmp", "w") as fh:
            fh.write(f"{time.time():.6f}")
        os.replace(f"{marker}.tmp", marker)
        time.sleep(600)

    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            probe()
        except CircuitOpenError:
            time.sleep(0.01)
