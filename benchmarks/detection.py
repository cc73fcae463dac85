"""Detection benchmark on the synthetic generator (research/detection.md sections 5 and 6).

Scores every detector per pattern: recall, delay from onset (median, p90), false alarms per
fault-free hour (per detector instance and system-wide), failure-type and severity accuracy, and
compute time for a full pass and an incremental update. Thresholds are the current frozen version
(`load_thresholds()`; its synthetic-detector numbers are those of
`prefect_ft/detection/thresholds_v1.json`, which later versions extend); `--calibrate` chooses them
on fault-free runs of seeds 0-99 (never on the evaluation seeds) and rewrites that file.
`--daily-load A` makes the drawn scenarios' task durations follow the daily load (amplitude A).
This file is the command line; the parts sit beside it: `detection_scenarios.py` (targeted and
sweep histories), `detection_runner.py` (the engine runs), `detection_scoring.py` (scores and
tables), `detection_timing.py` (compute time) and `detection_calibrate.py` (`--calibrate`).

    .venv/bin/python benchmarks/detection.py                 # full report (seeds 0-99, 1000-1019)
    .venv/bin/python benchmarks/detection.py --quick         # about a minute
    .venv/bin/python benchmarks/detection.py --calibrate     # re-choose thresholds on seeds 0-99
    .venv/bin/python benchmarks/detection.py --seeds 1000-1009 --daily-load 0.3 --only drawn
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# run as a script: the sibling modules import as `benchmarks.*` (as in chaos.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection_calibrate import calibrate, calibrate_cyclic_drawn
from benchmarks.detection_runner import run_jobs
from benchmarks.detection_scoring import score, table
from benchmarks.detection_timing import incremental_timing, pass_times
from prefect_ft.detection import THRESHOLDS_VERSION, load_thresholds


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seeds", default=None, help="evaluation seeds, e.g. 1000-1019 or 0-99,1000-1019"
    )
    ap.add_argument("--hours", type=float, default=48.0, help="hours per drawn scenario")
    ap.add_argument("--calibrate", action="store_true", help="choose thresholds on seeds 0-99")
    ap.add_argument(
        "--pass-time", action="store_true", help="full-pass time on fault-free 24-h histories"
    )
    ap.add_argument(
        "--calibrate-cyclic",
        action="store_true",
        help="after --calibrate: check the cyclic level on drawn seeds 0-99 (stricter only)",
    )
    ap.add_argument("--quick", action="store_true", help="4 seeds of 24 h, about a minute")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--daily-load",
        type=float,
        default=0.0,
        help="drawn scenarios: task durations x (1 + A sin(day phase)), A in [0, 0.9]",
    )
    ap.add_argument("--only", default=None, help="run only the sets whose title contains this text")
    ap.add_argument(
        "--throughput",
        action="store_true",
        help="also score every set with the throughput detector on (a second table per set)",
    )
    ap.add_argument(
        "--holdoff-by-type",
        action="store_true",
        help="run the engine with the burst hold-off per failure type "
        "(EngineConfig.burst_holdoff_by_type)",
    )
    ap.add_argument(
        "--common-mode",
        action="store_true",
        help="run the engine with degradation judged relative to the other stages "
        "(EngineConfig.degradation_common_mode)",
    )
    args = ap.parse_args()
    if args.calibrate:
        calibrate(
            parse_seeds(args.seeds or "0-99"),
            24.0 if args.hours == 48.0 else args.hours,
            args.workers,
        )
        return
    if args.pass_time:
        print(pass_times())
        return
    if args.calibrate_cyclic:
        calibrate_cyclic_drawn(parse_seeds(args.seeds or "0-99"), args.hours, args.workers)
        return
    th = load_thresholds().to_dict()
    if args.quick:
        sets = {
            "drawn episodes, seeds 1000-1003, 24 h": [
                (s, "drawn", 24.0, [th]) for s in range(1000, 1004)
            ],
            "targeted episodes, seeds 1000-1001": [
                (s, "targeted", 0.0, [th]) for s in range(1000, 1002)
            ],
        }
    else:
        seeds = parse_seeds(args.seeds) if args.seeds else None
        sets = {}
        # the calibration seeds (an in-sample check) and the evaluation seeds
        groups = (
            [
                ("calibration seeds 0-99", list(range(100)), args.hours),
                ("evaluation seeds 1000-1019", list(range(1000, 1020)), args.hours),
            ]
            if seeds is None
            else [(f"seeds {args.seeds}", seeds, args.hours)]
        )
        drawn = f"drawn@{args.daily_load:g}" if args.daily_load else "drawn"
        load = f", daily load {args.daily_load:g}" if args.daily_load else ""
        for name, ss, hours in groups:
            sets[f"drawn episodes, {name}, {hours:g} h{load}"] = [
                (s, drawn, hours, [th]) for s in ss
            ]
        sets["targeted episodes, seeds 1000-1019"] = [
            (s, "targeted", 0.0, [th]) for s in range(1000, 1020)
        ]
        for pattern in ("cyclic", "cascade"):
            sets[f"{pattern} sweep, seeds 1000-1019"] = [
                (s, f"sweep-{pattern}", 0.0, [th]) for s in range(1000, 1020)
            ]
    if args.only:
        sets = {k: v for k, v in sets.items() if args.only in k}
    print(f"thresholds v{THRESHOLDS_VERSION}: {json.dumps(th)}\n")
    if args.holdoff_by_type:
        print("engine: burst hold-off per failure type (burst_holdoff_by_type=True)\n")
    if args.common_mode:
        print("engine: degradation relative to the other stages (degradation_common_mode=True)\n")
    for name, jobs in sets.items():
        t0 = time.perf_counter()
        if args.holdoff_by_type:
            jobs = [(s, f"{k}+bt", h, ths) for s, k, h, ths in jobs]
        if args.common_mode:
            jobs = [(s, f"{k}+cm", h, ths) for s, k, h, ths in jobs]
        if args.throughput:
            jobs = [(s, f"{k}+tp", h, ths) for s, k, h, ths in jobs]
        results = run_jobs(jobs, args.workers)
        print(table(name, score(results)))
        if args.throughput:
            print(table(f"{name}, throughput detector on", score(results, 1)))
        print(f"({len(jobs)} seeds in {time.perf_counter() - t0:.0f} s wall)\n", flush=True)
    print(incremental_timing())


if __name__ == "__main__":
    main()
