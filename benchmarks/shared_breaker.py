"""Does a shared breaker protect a dead dependency? Ours (SQLite, Redis) vs pybreaker + Redis.

Run:  .venv/bin/python benchmarks/shared_breaker.py [--procs 4 8] [--seconds 10]

N real processes call one dead dependency (20 ms, then an error) as fast as they can for T
seconds through a breaker shared by all of them: fail_max 5, open window W = 2 s, K = 1 probe.
Every call that reaches the dependency is logged; the table prints the total, the first burst
(calls before the first 1 s gap) and the bound fail_max + (N - 1) + K * ceil(T / W)
(research/resilience.md §4.2 and §7.2 T4).
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAIL_MAX, WINDOW, K = 5, 2.0, 1


def _log(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{time.time():.6f}\n".encode())
    os.close(fd)


def _dead(path: str) -> None:
    _log(path)
    time.sleep(0.02)
    raise ConnectionError("down")


def worker(kind: str, url: str, log: str, start_at: float, seconds: float) -> None:
    if kind == "pybreaker":
        import pybreaker
        import redis

        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, redis.Redis.from_url(url), namespace="bench"
        )
        breaker = pybreaker.CircuitBreaker(
            fail_max=FAIL_MAX, reset_timeout=WINDOW, state_storage=storage
        )
        call, rejected = breaker.call, pybreaker.CircuitBreakerError
    else:
        from prefect_ft import CircuitBreaker, CircuitOpenError

        ours = CircuitBreaker(
            "bench",
            store=url,
            failure_threshold=FAIL_MAX,
            open_seconds=WINDOW,
            open_multiplier=1.0,
            half_open_calls=K,
        )
        call, rejected = ours.call, CircuitOpenError
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < start_at + seconds:
        try:
            call(_dead, log)
        except ConnectionError:
            pass
        except rejected:
            time.sleep(0.002)


def run(kind: str, url: str, n: int, seconds: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        log = str(Path(tmp) / "calls.log")
        start_at = time.time() + 3.0
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(target=worker, args=(kind, url, log, start_at, seconds)) for _ in range(n)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return (
            sorted(float(x) for x in Path(log).read_text().split()) if os.path.exists(log) else []
        )


def first_burst(starts: list[float]) -> int:
    for i in range(1, len(starts)):
        if starts[i] - starts[i - 1] > 1.0:
            return i
    return len(starts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis_proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    redis_url = f"redis://127.0.0.1:{port}/0"
    print(
        f"# command: .venv/bin/python benchmarks/shared_breaker.py --procs {' '.join(map(str, args.procs))} --seconds {args.seconds:g}"
    )
    print(
        f"{'breaker':28} {'N':>3} {'calls':>6} {'first burst':>12} {'bound':>6} {'later gaps >= 0.9 W':>20}"
    )
    try:
        import redis

        for n in args.procs:
            bound = FAIL_MAX + (n - 1) + K * math.ceil(args.seconds / WINDOW)
            with tempfile.TemporaryDirectory() as tmp:
                for kind, url in [
                    ("prefect_ft + SQLite", f"sqlite:///{tmp}/b.db"),
                    ("prefect_ft + Redis", redis_url),
                    ("pybreaker 1.4 + Redis", redis_url),
                ]:
                    redis.Redis.from_url(redis_url).flushdb()
                    starts = run(
                        "pybreaker" if kind.startswith("pybreaker") else "ours",
                        url,
                        n,
                        args.seconds,
                    )
                    burst = first_burst(starts)
                    later = starts[burst:]
                    ok = all(b - a >= 0.9 * WINDOW for a, b in itertools.pairwise(later))
                    print(
                        f"{kind:28} {n:3d} {len(starts):6d} {burst:12d} {bound:6d} {('yes' if ok else 'no'):>20}"
                    )
    finally:
        redis_proc.terminate()
        redis_proc.wait()


if __name__ == "__main__":
    main()
