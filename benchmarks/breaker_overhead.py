"""Per-call overhead of a circuit breaker: ours vs pybreaker and purgatory, in one process.

Run:  .venv/bin/python benchmarks/breaker_overhead.py [--calls 100000] [--repeats 7] [--redis-url URL]

Method (research/resilience.md §4.1): `timeit.repeat(number=calls, repeat=repeats)` around
`def f(): return 1`; each repeat gives microseconds per call; the table shows the median of the
repeats, and "added" subtracts the median of the unwrapped baseline measured in the same run.
Absolute times on a shared 2-core machine are noisy: read the ratios. With the SQLite and Redis
stores it also counts store round trips per call while CLOSED and while OPEN (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import timeit
from collections.abc import Callable

import purgatory
import pybreaker

from prefect_ft import CircuitBreaker, CircuitOpenError


def f() -> int:
    return 1


async def af() -> int:
    return 1


def per_call(fn: Callable[[], object], calls: int, repeats: int) -> float:
    return statistics.median(timeit.repeat(fn, number=calls, repeat=repeats)) / calls * 1e6


def per_call_async(make: Callable[[], object], calls: int, repeats: int) -> float:
    async def loop() -> None:
        for _ in range(calls):
            await make()  # type: ignore[misc]

    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        asyncio.run(loop())
        out.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(out)


def rejecting(call: Callable[[], object], exc: type[BaseException]) -> Callable[[], None]:
    def go() -> None:
        try:
            call()
        except exc:
            pass

    return go


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--redis-url", default=None, help="use this Redis instead of starting one")
    args = ap.parse_args()
    n, r = args.calls, args.repeats
    rows: list[tuple[str, float, float | None]] = []

    base = per_call(f, n, r)
    ours = CircuitBreaker("bench", store="memory://", refresh_seconds=None)
    ours_f = ours(f)
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    pyb_f = pyb(f)
    purg = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    purg_f = purg(circuit="bench")(f)
    for name, fn in [
        ("prefect_ft decorator, CLOSED", ours_f),
        ("prefect_ft breaker.call, CLOSED", lambda: ours.call(f)),
        ("pybreaker 1.4 decorator, CLOSED", pyb_f),
        ("purgatory 3 decorator, CLOSED", purg_f),
    ]:
        rows.append((name, per_call(fn, n, r), base))

    abase = per_call_async(af, n, r)
    ours_af = ours(af)
    apurg = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)

    async def purg_async() -> int:
        async with await apurg.get_breaker("bench"):
            return await af()

    rows.append(("prefect_ft async decorator, CLOSED", per_call_async(ours_af, n, r), abase))
    rows.append(
        ("purgatory 3 async get_breaker + with, CLOSED", per_call_async(purg_async, n, r), abase)
    )

    ours_open = CircuitBreaker(
        "open", store="memory://", refresh_seconds=None, failure_threshold=1, open_seconds=1e6
    )
    try:
        ours_open.call(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    ours_open_f = ours_open(f)
    pyb.open()
    rows.append(
        (
            "prefect_ft rejection while OPEN (raise+catch)",
            per_call(rejecting(ours_open_f, CircuitOpenError), n, r),
            None,
        )
    )
    rows.append(
        (
            "pybreaker rejection while OPEN (raise+catch)",
            per_call(rejecting(pyb_f, pybreaker.CircuitBreakerError), n, r),
            None,
        )
    )

    class Plain(Exception):
        pass

    def raise_plain() -> None:
        raise Plain()

    rows.append(
        (
            "bare raise+catch of an exception (floor)",
            per_call(rejecting(raise_plain, Plain), n, r),
            None,
        )
    )

    print(
        f"# breaker overhead: {n} calls x {r} repeats, median; python {os.sys.version.split()[0]}"
    )
    print(f"# command: .venv/bin/python benchmarks/breaker_overhead.py --calls {n} --repeats {r}")
    print(f"{'wrapper':52} {'us/call':>9} {'added us':>9}")
    added: dict[str, float] = {}
    for name, us, b in rows:
        add = us - b if b is not None else us
        added[name] = add
        print(f"{name:52} {us:9.3f} {add:9.3f}")
    ours_added = added["prefect_ft decorator, CLOSED"]
    pyb_added = added["pybreaker 1.4 decorator, CLOSED"]
    print(
        f"\nratio ours/pybreaker added overhead (CLOSED, sync): {ours_added / pyb_added:.2f} (target <= 0.5)"
    )
    print(
        f"ratio ours/purgatory added overhead (CLOSED, sync): {ours_added / added['purgatory 3 decorator, CLOSED']:.2f}"
    )
    print(
        f"ratio ours/pybreaker rejection: {added['prefect_ft rejection while OPEN (raise+catch)'] / added['pybreaker rejection while OPEN (raise+catch)']:.2f}"
    )

    # Store round trips per call: CLOSED and OPEN must cost none.
    proc, redis_url = (None, args.redis_url) if args.redis_url else start_redis()
    print(
        f"\n{'store':8} {'state':7} {'calls':>7} {'round trips':>12} {'per call':>9} {'us/call':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("sqlite", f"sqlite:///{tmp}/bench.db")]
        if redis_url:
            urls.append(("redis", redis_url))
        else:
            print("(redis-server not found: Redis rows skipped)")
        for label, url in urls:
            m = 20_000
            b = CircuitBreaker(f"rt-{label}", store=url, refresh_seconds=None)
            wrapped = b(f)
            before = b.store.round_trips
            us = per_call(wrapped, m, 1)
            trips = b.store.round_trips - before
            print(f"{label:8} {'CLOSED':7} {m:7d} {trips:12d} {trips / m:9.4f} {us:9.3f}")
            o = CircuitBreaker(
                f"rt-open-{label}",
                store=url,
                refresh_seconds=None,
                failure_threshold=1,
                open_seconds=1e6,
            )
            try:
                o.call(lambda: 1 / 0)
            except ZeroDivisionError:
                pass
            wrapped_o = rejecting(o(f), CircuitOpenError)
            before = o.store.round_trips
            us = per_call(wrapped_o, m, 1)
            trips = o.store.round_trips - before
            print(f"{label:8} {'OPEN':7} {m:7d} {trips:12d} {trips / m:9.4f} {us:9.3f}")
            b.store.close()
    if proc is not None:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
