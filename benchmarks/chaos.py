"""One fault schedule against three setups: plain Prefect retries, pybreaker in tasks, prefect-ft.

Run:  nice -n 10 .venv/bin/python benchmarks/chaos.py [--seeds 1 2 3] [--items 300]

A flow sends `--items` items through a Prefect task (4 worker threads) that calls one dependency
(10 ms a call, jittered by the seed). The dependency is down (refuses after 5 ms) from `--down-at`
to `--down-at + --down-for` seconds after the flow starts (the start is jittered by the seed).
Setups, alternated per seed:

- (a) `retries`: `@task(retries=3, retry_delay_seconds=exponential_backoff(0.5))` (0.5, 1, 2 s;
  Prefect's `retry_jitter_factor` is ignored by its 3.9 task engine, Prefect PR #22203);
- (b) `pybreaker`: the same task and retries, the call through `pybreaker.CircuitBreaker(
  fail_max=8, reset_timeout=2)`;
- (c) `prefect-ft`: `ft_task` with the same retries and the `ipc` preset (8 failures, open 2 s
  here instead of 5 s, recovery ramp 1 s); refused items are dead-lettered and a thread runs
  `replay()` in a loop while the flow runs (what the `replay-dead-letters` deployment does on
  `prefect-ft.breaker.closed`), and once more after it.

Printed per run: goodput (items completed per minute of wall time), calls that reached the
dependency while it was down, items lost (not completed at the end), seconds from the fault's
end until throughput is back to 80 % of its pre-fault rate (1 s window), and wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Dependency:
    """The component under fire: every call is logged with its time and outcome."""

    def __init__(self, seed: int, down_at: float, down_for: float) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.t0 = 0.0
        self.down = (down_at, down_at + down_for)
        self.calls: list[tuple[float, bool, int]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, item: int) -> int:
        with self.lock:  # the schedule's clock starts at the first call, not at flow start-up
            if not self.t0:
                self.t0 = time.monotonic()
        t = self.now()
        is_down = self.down[0] <= t < self.down[1]
        with self.lock:
            jitter = self.rng.uniform(0.0, 0.004)
        time.sleep(0.005 if is_down else 0.010 + jitter)
        with self.lock:
            self.calls.append((t, not is_down, item))
        if is_down:
            raise ConnectionRefusedError("dependency down")
        return item


DEP: Dependency | None = None


def call_dependency(item: int) -> int:
    assert DEP is not None
    return DEP(item)


def _metrics(dep: Dependency, done: set[int], n: int, wall: float) -> dict[str, Any]:
    start, end = dep.down
    ok = sorted(t for t, good, _ in dep.calls if good)
    base = [t for t in ok if 1.0 <= t < start]  # skip the first second (warm-up)
    rate = len(base) / max(start - 1.0, 1e-9)
    back = None
    i = 0
    for t in ok:  # first 1 s window after the fault whose rate is >= 80 % of the baseline
        if t < end:
            continue
        while ok[i] < t - 1.0:
            i += 1
        if sum(1 for u in ok[i:] if u <= t) >= 0.8 * rate:
            back = round(t - end, 2)
            break
    return {
        "goodput_per_min": round(len(done) / wall * 60, 1),
        "calls_while_down": sum(1 for t, _, _ in dep.calls if start <= t < end),
        "lost": n - len(done),
        "back_to_full_s": back,
        "wall_s": round(wall, 2),
    }


def run_one(setup: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    global DEP
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect.tasks import exponential_backoff

    rng = random.Random(seed)
    DEP = dep = Dependency(seed, args.down_at + rng.uniform(-0.5, 0.5), args.down_for)
    retry = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=0.5)}
    name = f"chaos-{setup}-{seed}-{uuid.uuid4().hex[:6]}"
    if setup == "retries":
        work = task(call_dependency, name=name, **retry)
    elif setup == "pybreaker":
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=8, reset_timeout=2.0)

        def through_pybreaker(item: int) -> int:
            return breaker.call(call_dependency, item)

        work = task(through_pybreaker, name=name, **retry)
    else:
        from prefect_ft import ft_task
        from prefect_ft.presets import preset_config
        from prefect_ft.tasks.policies import FTPolicy

        config = dataclasses.replace(
            preset_config("ipc", open_seconds=2.0, recovery_seconds=1.0), name=name
        )
        policy = FTPolicy(name, config)
        work = ft_task(call_dependency, breaker=policy, name=name, **retry)

    @flow(name=f"chaos-{setup}", task_runner=ThreadPoolTaskRunner(max_workers=4))
    def pipeline(items: list[int]) -> list[Any]:
        futures = [work.submit(i) for i in items]
        return [f.state for f in futures]

    items = list(range(args.items))
    stop = threading.Event()
    replayer = None
    if setup == "prefect-ft":
        from prefect_ft import replay

        fns = {f"{__name__}:call_dependency": call_dependency}

        def replay_loop() -> None:
            # what the replay-dead-letters deployment does on `prefect-ft.breaker.closed`: drain
            # the queue as soon as the breaker admits calls again, while the flow still runs
            while not stop.is_set():
                replay(name, wait_seconds=0.5, functions=fns)
                stop.wait(0.25)
            replay(name, wait_seconds=30, functions=fns)

        replayer = threading.Thread(target=replay_loop, daemon=True)
        replayer.start()
    try:
        pipeline(items)
    finally:
        stop.set()
        if replayer is not None:
            replayer.join()
    # an item is completed when a call for it succeeded (the task returns right after)
    done = {item for _, ok, item in dep.calls if ok}
    wall = dep.now()  # the flow and, for prefect-ft, the replay
    return {"setup": setup, "seed": seed, **_metrics(dep, done, len(items), wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--items", type=int, default=150)
    parser.add_argument("--down-at", type=float, default=5.0)
    parser.add_argument("--down-for", type=float, default=6.0)
    parser.add_argument("--setups", nargs="+", default=["retries", "pybreaker", "prefect-ft"])
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="chaos-")
    os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{home}/prefect-ft.db"
    os.environ.setdefault("PREFECT_FT_DEADLETTER_KEY", f"chaos-{uuid.uuid4().hex}")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from prefect.testing.utilities import prefect_test_harness

    rows = []
    with prefect_test_harness(server_startup_timeout=180):
        for seed in args.seeds:
            order = args.setups[seed % len(args.setups) :] + args.setups[: seed % len(args.setups)]
            for setup in order:  # alternated: each seed starts with another setup
                row = run_one(setup, seed, args)
                print(row, flush=True)
                rows.append(row)
    print(f"\n{args.items} items, dependency down {args.down_for:g} s from ~{args.down_at:g} s, seeds {args.seeds}")  # fmt: skip
    print("| setup | goodput/min | calls while down | lost | back to full (s) | wall (s) |")
    print("|---|---|---|---|---|---|")
    for setup in args.setups:
        mine = [r for r in rows if r["setup"] == setup]

        def med(key: str, mine: list[dict[str, Any]] = mine) -> str:
            vals = [r[key] for r in mine if r[key] is not None]
            return f"{statistics.median(vals):g}" if vals else "never"

        print(f"| {setup} | {med('goodput_per_min')} | {med('calls_while_down')} | {med('lost')} | {med('back_to_full_s')} | {med('wall_s')} |")  # fmt: skip


if __name__ == "__main__":
    main()
