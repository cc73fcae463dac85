"""Hung stages on the synthetic generator: recall, delay and the component named.

`benchmarks/detection.py` has no hang episode (a generated run always ends), so this script
injects one into generated histories: from a time T on, one stage's next `cap` attempts start
and never end (its slots fill and nothing else starts there), and every flow that reached that
stage from T on goes no further. Upstream stages keep working. The engine is fed the finished
rows up to T + `--watch` minutes, with the stuck runs as `update(running=...)`, as the detection
flow reads them (runs still RUNNING). A hit is an alarm naming the stage with failure type
Timeout (`hang.HangTracker`) after T; the delay is from T. It also counts the hang alarms the
same seeds raise without a hang (anywhere in the history, episodes included).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/hangs.py --seeds 1000-1019
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# run as a script: the sibling modules import as `benchmarks.*` (as in chaos.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection import parse_seeds
from prefect_ft.detection import DetectionEngine, EngineConfig, FailureType
from prefect_ft.detection.batch import RunningBatch, TaskRunBatch
from prefect_ft.detection.synthetic import STAGES, START_TS, Scenario, generate


def hung(hist, stage: int, at: float) -> tuple[TaskRunBatch, RunningBatch]:
    """The history with stage `stage` hanging from `at` (epoch seconds) on."""
    t, flow = hist.tasks, hist.columns["flow_run_id"]
    mine = t.component == stage
    late = mine & (t.start >= at)
    first = np.sort(t.start[late])[: STAGES[stage].cap]  # the attempts that start and stick
    stuck = np.unique(flow[late])  # flows that reached the stage from `at` on
    gone = late | ((t.component > stage) & np.isin(flow, stuck))
    keep = ~gone
    batch = TaskRunBatch(
        t.components,
        t.start[keep],
        t.end[keep],
        t.failed[keep],
        t.failure_type[keep],
        t.component[keep],
        t.duration[keep],
    )
    return batch, RunningBatch(t.components, first, np.full(first.size, stage))


def is_hang(a) -> bool:
    return a.failure_type == FailureType.TIMEOUT and "oldest_in_flight_s" in dict(a.evidence)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1000-1019")
    ap.add_argument("--hours", type=float, default=12.0, help="history before the hang ends")
    ap.add_argument("--watch", type=float, default=30.0, help="minutes watched after the hang")
    ap.add_argument("--daily-load", type=float, default=0.0)
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    t0 = time.perf_counter()
    rows: dict[int, list[tuple[bool, float, int, int]]] = {k: [] for k in range(len(STAGES))}
    quiet_hangs, quiet_hours = [], 0.0
    for seed in seeds:
        hist = generate(seed, Scenario(hours=args.hours, daily_load=args.daily_load))
        rng = np.random.default_rng(seed)
        # no hang: every hang alarm of the whole history (episodes and controls included)
        alarms = DetectionEngine(EngineConfig()).update(hist.tasks, hist.resources).alarms
        quiet_hangs += [(seed, a) for a in alarms if is_hang(a)]
        quiet_hours += (hist.end_ts - hist.start_ts) / 3600.0
        for stage in range(len(STAGES)):
            at = hist.start_ts + float(rng.uniform(4 * 3600.0, args.hours * 3600.0 - 1800.0))
            until = at + 60.0 * args.watch
            batch, running = hung(hist, stage, at)
            found = (
                DetectionEngine(EngineConfig())
                .update(
                    batch.between(-np.inf, until),
                    hist.resources.between(-np.inf, until),
                    until=until,
                    running=running,
                )
                .alarms
            )
            after = [a for a in found if a.at >= at]
            hits = [a for a in after if is_hang(a) and a.components == (STAGES[stage].name,)]
            wrong = [a for a in after if is_hang(a) and a.components != (STAGES[stage].name,)]
            other = [a for a in after if not is_hang(a) and STAGES[stage].name in a.components]
            rows[stage].append(
                (bool(hits), hits[0].at - at if hits else np.nan, len(wrong), len(other))
            )
    print(
        f"### hung stages, seeds {args.seeds}, hang in hour 4-{args.hours:g}, watched "
        f"{args.watch:g} min, daily load {args.daily_load:g}\n"
    )
    print(
        "| stage | hangs | found | median delay s | max delay s | hang alarms naming another"
        " stage | hangs another detector also named the stage in |"
    )
    print("|---|---|---|---|---|---|---|")
    for k, r in rows.items():
        hit = [x for x in r if x[0]]
        d = [x[1] for x in hit]
        print(
            f"| {STAGES[k].name} | {len(r)} | {len(hit)} | "
            f"{np.median(d) if d else float('nan'):.0f} | {max(d) if d else float('nan'):.0f} | "
            f"{sum(x[2] for x in r)} | {sum(x[3] > 0 for x in r)} |"
        )
    print(
        f"\nWithout a hang: {len(quiet_hangs)} hang alarms in {quiet_hours:.0f} h "
        f"(episodes and negative controls included)"
    )
    for seed, a in quiet_hangs:
        print(f"  seed {seed}: {a.components} at {(a.at - START_TS) / 3600:.2f} h: {a.explanation}")
    print(f"\n({len(seeds)} seeds in {time.perf_counter() - t0:.0f} s wall)")


if __name__ == "__main__":
    main()
