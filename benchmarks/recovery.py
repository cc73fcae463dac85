"""Time from a component fault to a healed, serving component, on a real Prefect server.

Repeats the end-to-end scenario of `tests/e2e/test_recovery_e2e.py` (see `tests/e2e/scenario.py`)
N times: the component starts failing -> its breaker opens -> the `prefect-ft.breaker.opened`
automation starts the `recover` deployment that `prefect-ft serve` serves -> `recover` restarts
the component through its control channel and validates it -> the breaker half-opens, the
next call probes it, the ramp closes it -> the dead-lettered calls replay. One `prefect server
start` (SQLite) serves every run; each run gets its own breaker store, `prefect-ft serve`,
component and workload, so no run inherits another's escalation or backoff.

It prints, per time, the median and p90 over the runs that completed, against the targets
(onset -> open <= 10 s, open -> recovery running <= 10 s, onset -> healthy and serving <= 30 s),
and how many runs failed (with the first line of each failure).

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/recovery.py [--runs 10] [--every 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.scenario import Timings, run_once
from tests.e2e.stack import Stack

TARGETS = {"open_s": 10.0, "running_s": 10.0, "healthy_s": 30.0}
LABELS = {
    "open_s": "onset -> breaker open",
    "running_s": "open -> recovery running",
    "healthy_s": "onset -> healthy and serving",
    "closed_s": "onset -> breaker closed",
}


def p90(values: list[float]) -> float:
    """The nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between workload calls")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")

    results: list[Timings] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ft-recovery-bench-") as tmp, Stack(Path(tmp)) as stack:
        started = time.monotonic()
        stack.start_server()
        print(f"server up in {time.monotonic() - started:.1f} s", flush=True)
        for i in range(args.runs):
            run_dir = Path(tmp) / f"run-{i}"
            run_dir.mkdir()
            try:
                t = run_once(stack, run_dir, args.every, tag=f"-{i}")
            except AssertionError as exc:  # StackError included: one failed run, keep going
                failures.append(f"run {i}: {str(exc).splitlines()[0]}")
                print(failures[-1], flush=True)
                continue
            results.append(t)
            print(
                f"run {i}: open {t.open_s:.2f} s, running {t.running_s:.2f} s, "
                f"healthy {t.healthy_s:.2f} s, closed {t.closed_s:.2f} s, "
                f"{t.replayed} replayed",
                flush=True,
            )

    print(f"\n{len(results)} of {args.runs} runs completed; every {args.every} s a call\n")
    print("| time | median (s) | p90 (s) | target (s) |")
    print("|---|---|---|---|")
    for key, label in LABELS.items():
        values = [getattr(t, key) for t in results]
        if not values:
            continue
        target = f"<= {TARGETS[key]:.0f}" if key in TARGETS else "-"
        print(f"| {label} | {statistics.median(values):.2f} | {p90(values):.2f} | {target} |")
    for failure in failures:
        print(failure)


if __name__ == "__main__":
    main()
