"""A pipeline process for the emergency-stop test: calls through two breakers until both refuse.

Run as `python emergency_worker.py URL`: prints `ready`, then `rejected NAME T` (T = wall clock,
the SQLite store's clock) the first time each breaker refuses a call, and exits.
"""

from __future__ import annotations

import sys
import time

from prefect_ft import CircuitBreaker, CircuitOpenError


def main(url: str) -> None:
    breakers = [CircuitBreaker(n, store=url, refresh_seconds=0.2) for n in ("ipc", "model")]
    print("ready", flush=True)
    pending = {b.name: b for b in breakers}
    deadline = time.time() + 60
    while pending and time.time() < deadline:
        for name, b in list(pending.items()):
            try:
                b.call(lambda: None)
            except CircuitOpenError:
                print(f"rejected {name} {time.time():.6f}", flush=True)
                del pending[name]
        time.sleep(0.005)


if __name__ == "__main__":
    main(sys.argv[1])
