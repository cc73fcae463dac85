"""`chaos.py --scale`: chaos.py's runs as deployments on PostgreSQL, two process workers and Redis.

Run:  nice -n 10 .venv/bin/python benchmarks/chaos.py --scale [--seeds 1 2 3]
(or `benchmarks/chaos_scale.py` with the same options).

`prefect_ft.demo.scale.ScaleStack` starts PostgreSQL, a Prefect server on it
(`PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...`), Redis and a `process` work pool
with two `prefect worker` processes (one flow run each at a time), every process with
`PREFECT_FT_STORE_URL=redis://...`. The flow below is deployed to the pool; each of its runs
runs chaos.py's `chaos_flow` as a subflow in the worker's flow-run process: the same seeded
schedule, load, setups and metrics as `chaos.py`, with the breaker and its dead letters in Redis
and the run history in PostgreSQL. The row is logged by the run (`chaos-row {json}`) and read
back from the run's logs. `--pairs` sends two runs at once, one per worker (faster; they then
share the 2 cores), otherwise one at a time, alternating workers.

The dependency is chaos.py's, inside the flow-run process (its call log is the measurement), so
each run is measured on its own, and a run's end drains its dead letters as chaos.py's does (the
row's `drain` and, for a loss, `lost_dead_letters`). One breaker shared between workers through
Redis is what `tests/scale/test_scaled_stack.py` checks (the split-load variant,
`chaos_scale_split.py`, was a second copy of this flow and is gone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

REPO = Path(__file__).resolve().parents[1]
LABEL = "scaled (PostgreSQL, 2 process workers, Redis)"
_ROW = "chaos-row "


@flow(name="chaos-scaled")
def chaos_scaled(
    setup: str,
    seed: int,
    items: int = 300,
    rate: float = 6.0,
    down_for: float = 25.0,
    trace: bool = False,
) -> dict[str, Any]:
    """chaos.py's `chaos_flow` in this flow-run process; logs its row for the benchmark."""
    from benchmarks import chaos  # by module path: dead letters pickle its functions by reference

    row = chaos.chaos_flow(setup, seed, items=items, rate=rate, down_for=down_for, trace=trace)
    get_run_logger().info(_ROW + json.dumps(row, default=str))
    return row


def _row(api: Any, run_id: str, wait_s: float = 30.0) -> dict[str, Any] | None:
    # The run's last log lines reach the API after its final state (the log worker flushes
    # in batches): a single read right after COMPLETED missed the row of 2 of 9 runs.
    deadline = time.monotonic() + wait_s
    while True:
        for message in api.logs(run_id):
            if message.startswith(_ROW):
                return dict(json.loads(message[len(_ROW) :]))
        if time.monotonic() >= deadline:
            return None
        time.sleep(1.0)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every setup once per seed (order rotated per seed, as chaos.py) on the scaled stack."""
    sys.path.insert(0, str(REPO))
    from prefect_ft.demo.scale import ScaleStack
    from prefect_ft.demo.scale_api import StackAPI

    t0 = time.monotonic()
    jobs = []
    for seed in args.seeds:
        k = seed % len(args.setups)
        jobs += [(s, seed) for s in args.setups[k:] + args.setups[:k]]
    rows: list[dict[str, Any]] = []
    deploy = ["prefect", "--no-prompt", "deploy", "benchmarks/chaos_scale.py:chaos_scaled",
              "--name", "chaos", "--pool", "ft-pool"]  # fmt: skip
    with ScaleStack(workers=2, worker_limit=1, deployments=(), setup=(deploy,)) as stack:
        print(f"stack up and deployed in {time.monotonic() - t0:.0f} s {stack.timings}", flush=True)
        api = StackAPI(stack.api_url)
        try:
            step = 2 if args.pairs else 1
            for i in range(0, len(jobs), step):
                batch = jobs[i : i + step]
                params = {"items": args.items, "rate": args.rate, "down_for": args.down_for}
                if args.trace:
                    params["trace"] = True
                runs = [
                    api.run_deployment("chaos-scaled/chaos", {"setup": s, "seed": seed, **params})
                    for s, seed in batch
                ]
                states = api.wait_final(runs, timeout=args.run_timeout)
                for (setup, seed), r in zip(batch, runs, strict=True):
                    row = _row(api, r)
                    if row is None:
                        print(f"{setup} seed {seed}: no row ({states[r]})", flush=True)
                        continue
                    row.update(worker=api.submitted_by(r), state=states[r])
                    trace = row.pop("trace", None)
                    print(row, flush=True)
                    if trace is not None:
                        from benchmarks.chaos_trace import print_trace

                        print_trace({**row, "trace": trace})
                    rows.append(row)
        finally:
            api.close()
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--items", type=int, default=300)
    p.add_argument("--rate", type=float, default=6.0, help="items submitted per second")
    p.add_argument("--down-for", type=float, default=25.0, help="outage length (s)")
    p.add_argument("--setups", nargs="+", default=["retries", "pybreaker", "prefect-ft"])
    p.add_argument("--pairs", action="store_true", help="two runs at once, one per worker")
    p.add_argument("--run-timeout", type=float, default=600.0)
    p.add_argument("--trace", action="store_true", help="print each run's timeline after the outage's end")  # fmt: skip
    return p


def main(args: argparse.Namespace | None = None) -> int:
    args = args or parser().parse_args()
    for name, default in parser().parse_args([]).__dict__.items():
        if not hasattr(args, name):  # called from chaos.py with its own options
            setattr(args, name, default)
    from benchmarks import chaos

    rows = run(args)
    print(f"\n{LABEL}: {args.items} items at {args.rate:g}/s; outage {args.down_for:g} s from ~13 s, error burst ~4-6 s, latency ~8-11 s; seeds {args.seeds}; medians; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    chaos.report(rows, args.setups)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
