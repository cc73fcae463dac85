"""How fast does a trip in one process reach another? (research/resilience.md §7.2 T5)

Run:  .venv/bin/python benchmarks/propagation.py [--trips 30]

Process A trips a shared breaker, process B spins on calls through its own breaker object and
notes when it first rejects. The store's refresher polls every `PREFECT_FT_REFRESH_SECONDS`
(0.2 s by default), so the target is p99 <= 250 ms. Each trip is followed by an operator reset.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import socket
import statistics
import subprocess
import tempfile
import time


def watcher(url: str, trips: int, conn) -> None:  # type: ignore[no-untyped-def]
    from prefect_ft import CircuitBreaker, CircuitOpenError

    b = CircuitBreaker("prop", store=url, failure_threshold=1, open_seconds=3600)
    conn.send("ready")
    seen: list[float] = []
    for _ in range(trips):
        conn.recv()  # "go": A is about to trip
        while True:
            try:
                b.call(lambda: None)
            except CircuitOpenError:
                seen.append(time.time())
                break
            time.sleep(0.0005)
        conn.send(seen[-1])
        conn.recv()  # A has reset the breaker
        deadline = time.time() + 5
        while b.state != "CLOSED" and time.time() < deadline:
            time.sleep(0.005)
        conn.send("closed")


def measure(url: str, trips: int) -> list[float]:
    from prefect_ft import CircuitBreaker

    a = CircuitBreaker("prop", store=url, failure_threshold=1, open_seconds=3600)
    parent, child = mp.Pipe()
    p = mp.get_context("spawn").Process(target=watcher, args=(url, trips, child))
    p.start()
    assert parent.recv() == "ready"
    delays = []
    for _ in range(trips):
        parent.send("go")
        time.sleep(0.05 + 0.2 * (len(delays) % 7) / 7)  # trip at varying phases of the poll
        t0 = time.time()
        try:
            a.call(lambda: 1 / 0)
        except ZeroDivisionError:
            pass
        delays.append(parent.recv() - t0)
        a.reset()
        parent.send("reset")
        assert parent.recv() == "closed"
    p.join()
    return delays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trips", type=int, default=30)
    args = ap.parse_args()
    print(f"# command: .venv/bin/python benchmarks/propagation.py --trips {args.trips}")
    print(f"{'store':8} {'trips':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    urls = []
    tmp = tempfile.TemporaryDirectory()
    urls.append(("sqlite", f"sqlite:///{tmp.name}/p.db"))
    proc = None
    if shutil.which("redis-server"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        urls.append(("redis", f"redis://127.0.0.1:{port}/0"))
    try:
        for label, url in urls:
            d = sorted(x * 1000 for x in measure(url, args.trips))
            q = statistics.quantiles(d, n=100, method="inclusive")
            print(f"{label:8} {len(d):6d} {q[49]:8.1f} {q[89]:8.1f} {q[98]:8.1f} {d[-1]:8.1f}")
    finally:
        if proc is not None:
            proc.terminate()
        tmp.cleanup()


if __name__ == "__main__":
    main()
