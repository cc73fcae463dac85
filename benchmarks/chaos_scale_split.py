"""Two workers sharing one breaker: chaos.py's earlier outage, its load split over two flow runs.

Run:  nice -n 10 .venv/bin/python benchmarks/chaos_scale_split.py [--seeds 1 2 3] [--items 300]

`prefect_ft.demo.scale.ScaleStack` starts PostgreSQL, a Prefect server on it, Redis (the breaker
store) and a process pool with two workers (one flow run each at a time). Each run of a setup and
seed creates two flow runs at once, one per worker, each sending half of `--items` through a
task (4 threads) that calls one dependency: an HTTP server in this process (10 ms a call,
jittered by the seed), down (503 after 5 ms) from `--down-at` to `--down-at + --down-for`
seconds after both flow runs have reached a barrier (`/ready`), so the window falls on both.
The setups are those of chaos.py before its RAN-like schedule (2026-12-01):

- (a) `retries`: `@task(retries=3, retry_delay_seconds=exponential_backoff(0.5))`;
- (b) `pybreaker`: the same task, the call through a `pybreaker.CircuitBreaker(fail_max=8,
  reset_timeout=2)`, one per flow run (pybreaker keeps its state in the process);
- (c) `prefect-ft`: `ft_task` with the `ipc` preset (open 2 s, ramp 1 s), its breaker and dead
  letters in Redis, shared by both flow runs; each flow run replays dead letters in a thread
  while it runs and once more at its end (either run may replay the other's).

Printed per run and as medians: goodput (items completed per minute of wall time), calls that
reached the dependency while it was down, items lost, seconds from the fault's end back to 80 % of
the pre-fault rate (1 s window), and wall time (barrier to the last flow run's end).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

REPO = Path(__file__).resolve().parents[1]
LABEL = "scaled (PostgreSQL, 2 process workers, Redis), load split over both"
_client: Any = None


# -- in the flow-run processes ---------------------------------------------------------------
def call_dependency(url: str, item: int) -> int:
    """One call to the dependency (a refused call raises, as chaos.py's dependency does)."""
    global _client
    import httpx

    if _client is None:
        _client = httpx.Client(timeout=10)
    response = _client.get(f"{url}/call", params={"item": item})
    if response.status_code != 200:
        raise ConnectionRefusedError("dependency down")
    return item


def _work(setup: str, name: str, open_seconds: float, recovery_seconds: float) -> Any:
    from prefect import task
    from prefect.tasks import exponential_backoff

    retry = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=0.5)}
    if setup == "retries":
        return task(call_dependency, name=name, **retry)
    if setup == "pybreaker":
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=8, reset_timeout=2.0)

        def through_pybreaker(url: str, item: int) -> int:
            return breaker.call(call_dependency, url, item)

        return task(through_pybreaker, name=name, **retry)
    import dataclasses

    from prefect_ft import ft_task
    from prefect_ft.presets import preset_config
    from prefect_ft.tasks.policies import FTPolicy

    config = dataclasses.replace(
        preset_config("ipc", open_seconds=open_seconds, recovery_seconds=recovery_seconds),
        name=name,
    )
    return ft_task(call_dependency, breaker=FTPolicy(name, config), name=name, **retry)


@flow(name="chaos-scaled-split", task_runner=ThreadPoolTaskRunner(max_workers=4))
def chaos_scaled(
    setup: str,
    name: str,
    url: str,
    items: list[int],
    open_seconds: float = 2.0,
    recovery_seconds: float = 1.0,
) -> int:
    """Send `items` through the setup's task; the dependency's log is the measurement."""
    import httpx

    # imported by its module path, so a dead letter written here replays in the other worker
    from benchmarks import chaos_scale_split as me

    work = me._work(setup, name, open_seconds, recovery_seconds)
    deadline = time.monotonic() + 120
    httpx.post(f"{url}/ready", timeout=10)
    while not httpx.get(f"{url}/go", timeout=10).json()["go"] and time.monotonic() < deadline:
        time.sleep(0.05)  # both flow runs start sending together

    stop = threading.Event()
    replayer = None
    if setup == "prefect-ft":
        from prefect_ft import replay

        def replay_loop() -> None:
            while not stop.is_set():
                replay(name, wait_seconds=0.5)
                stop.wait(0.25)
            replay(name, wait_seconds=30)

        replayer = threading.Thread(target=replay_loop, daemon=True)
        replayer.start()
    try:
        futures = [work.submit(url, i) for i in items]
        for f in futures:
            f.wait()
    finally:
        stop.set()
        if replayer is not None:
            replayer.join()
    return len(items)


# -- in the benchmark process ----------------------------------------------------------------
class HttpDependency:
    """A dependency behind HTTP: down in `.down` (seconds after the barrier), `.calls` (t, ok, item)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset(0, 0.0, 0.0, 0)
        dep = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # /ready: a flow run reached the barrier
                with dep.lock:
                    dep.ready += 1
                    if dep.ready >= dep.expected and not dep.t0:
                        dep.t0, dep.epoch0 = time.monotonic(), time.time()
                self._answer(200, {"ok": True})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/go":
                    return self._answer(200, {"go": bool(dep.t0)})
                item = int(parse_qs(parts.query).get("item", ["-1"])[0])
                ok = dep.call(item)
                return self._answer(200 if ok else 503, {"item": item})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, seed: int, down_at: float, down_for: float, expected: int) -> None:
        with self.lock:
            self.rng = random.Random(seed)
            self.down = (down_at, down_at + down_for)
            self.calls: list[tuple[float, bool, int]] = []
            self.t0 = self.epoch0 = 0.0
            self.ready, self.expected = 0, expected

    def now(self) -> float:
        return time.monotonic() - self.t0 if self.t0 else 0.0

    def call(self, item: int) -> bool:
        t = self.now()
        is_down = self.down[0] <= t < self.down[1]
        with self.lock:
            jitter = self.rng.uniform(0.0, 0.004)
        time.sleep(0.005 if is_down else 0.010 + jitter)
        with self.lock:
            self.calls.append((t, not is_down, item))
        return not is_down

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _metrics(dep: HttpDependency, done: set[int], n: int, wall: float) -> dict[str, Any]:
    """The row of one run (chaos.py's arithmetic of 2026-12-01, for a one-window outage)."""
    start, end = dep.down
    ok = sorted(t for t, good, _ in dep.calls if good)
    base = [t for t in ok if 1.0 <= t < start]  # skip the first second (warm-up)
    rate = len(base) / max(start - 1.0, 1e-9)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks.chaos import back_to_full  # the same arithmetic as the main benchmark

    back = back_to_full(ok, end, rate)
    return {
        "goodput_per_min": round(len(done) / wall * 60, 1),
        "calls_while_down": sum(1 for t, _, _ in dep.calls if start <= t < end),
        "lost": n - len(done),
        "back_to_full_s": back,
        "wall_s": round(wall, 2),
    }


def run_one(stack: Any, api: Any, dep: HttpDependency, setup: str, seed: int, args: Any) -> dict:
    rng = random.Random(seed)
    dep.reset(seed, args.down_at + rng.uniform(-0.5, 0.5), args.down_for, expected=2)
    name = f"chaos-{setup}-{seed}-{uuid.uuid4().hex[:6]}"
    items = list(range(args.items))
    runs = [
        api.run_deployment(
            "chaos-scaled-split/chaos-split",
            {"setup": setup, "name": name, "url": dep.url, "items": items[k::2]},
        )
        for k in range(2)
    ]
    states = api.wait_final(runs, timeout=args.run_timeout)
    ends = [api.flow_run(r).get("end_time") for r in runs]
    from datetime import datetime

    last = max(datetime.fromisoformat(e).timestamp() for e in ends if e) if all(ends) else None
    wall = (last - dep.epoch0) if last and dep.epoch0 else dep.now()
    done = {item for _, ok, item in dep.calls if ok}
    workers = sorted({api.submitted_by(r) or "?" for r in runs})
    row = {"setup": setup, "seed": seed, **_metrics(dep, done, len(items), wall)}
    row.update(states=sorted(set(states.values())), workers=workers)
    return row


def table(rows: list[dict[str, Any]], setups: list[str], label: str = LABEL) -> list[str]:
    out = [
        "| setup | scale | goodput/min | calls while down | lost | back to full (s) | wall (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for setup in setups:
        mine = [r for r in rows if r["setup"] == setup]

        def med(key: str, mine: list[dict[str, Any]] = mine) -> str:
            vals = [r[key] for r in mine if r[key] is not None]
            return f"{statistics.median(vals):g}" if vals else "never"

        out.append(f"| {setup} | {label} | {med('goodput_per_min')} | {med('calls_while_down')} | {med('lost')} | {med('back_to_full_s')} | {med('wall_s')} |")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--items", type=int, default=300)  # two workers: twice chaos.py's
    parser.add_argument("--down-at", type=float, default=5.0)
    parser.add_argument("--down-for", type=float, default=6.0)
    parser.add_argument("--setups", nargs="+", default=["retries", "pybreaker", "prefect-ft"])
    parser.add_argument("--run-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from prefect_ft.demo.scale import ScaleStack
    from prefect_ft.demo.scale_api import StackAPI

    t0 = time.monotonic()
    dep = HttpDependency()
    rows: list[dict[str, Any]] = []
    with ScaleStack(workers=2, worker_limit=1, deployments=()) as stack:
        print(f"stack up in {time.monotonic() - t0:.0f} s {stack.timings}", flush=True)
        stack.prefect("--no-prompt", "deploy", "benchmarks/chaos_scale_split.py:chaos_scaled",
                      "--name", "chaos-split", "--pool", stack.pool)  # fmt: skip
        api = StackAPI(stack.api_url)
        try:
            for seed in args.seeds:
                order = args.setups[seed % len(args.setups) :] + args.setups[: seed % len(args.setups)]  # fmt: skip
                for setup in order:  # alternated: each seed starts with another setup
                    row = run_one(stack, api, dep, setup, seed, args)
                    print(row, flush=True)
                    rows.append(row)
        finally:
            api.close()
            dep.close()
    print(f"\n{args.items} items over 2 flow runs, dependency down {args.down_for:g} s from ~{args.down_at:g} s, seeds {args.seeds}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("\n".join(table(rows, args.setups)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
