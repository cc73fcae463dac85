"""Threshold calibration for the synthetic detectors (`detection.py --calibrate`).

Chooses, per pattern, the least strict level of a grid of knobs from which every stricter level
keeps the false-alarm budget on fault-free runs of seeds 0-99 (never the evaluation seeds), and
writes `prefect_ft/detection/thresholds_v1.json`; `calibrate_cyclic_drawn` then checks the cyclic
level on drawn scenarios and makes it stricter only. Scores with `detection_scoring.py`.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.detection_runner import described, run_jobs
from benchmarks.detection_scoring import BUDGET_PER_INSTANCE_H, INSTANCES, fault_free, hit_of
from prefect_ft.detection import Thresholds, load_thresholds
from prefect_ft.detection.cyclic import CyclicTracker
from prefect_ft.detection.synthetic import Scenario, generate

__all__ = ["GRID", "THRESHOLDS_FILE", "calibrate", "calibrate_cyclic_drawn", "run_cyclic_seed"]

THRESHOLDS_FILE = Path(__file__).resolve().parents[1] / "prefect_ft/detection/thresholds_v1.json"
# calibration grid: level i of each pattern's knobs, least to most strict
GRID: dict[str, dict[str, list[float]]] = {
    "burst": {
        "burst_h": [9.0, 10.0, 11.0, 12.5, 14.0, 16.0],
        "burst_h_fast": [11.0, 12.0, 13.0, 14.5, 16.0, 18.0],
    },
    "degradation": {
        "deg_h": [8.0, 10.0, 12.0, 15.0, 19.0, 24.0],
        "mk_z": [4.0, 4.5, 5.0, 5.5, 6.0, 7.0],
    },
    "exhaustion": {
        "exh_min_ratio": [3.0, 4.0, 5.0, 6.0, 8.0, 10.0],
        "exh_cpu_min_rise": [10.0, 12.0, 15.0, 18.0, 22.0, 26.0],
    },
    "cyclic": {
        "cyc_z": [5.0, 5.5, 6.0, 7.0, 8.0, 9.0],
        "cyc_power": [18.0, 21.0, 24.0, 28.0, 32.0, 36.0],
    },
}


def run_cyclic_seed(job: tuple[int, float, list[dict[str, Any]]]) -> dict[str, Any]:
    """A drawn history through the cyclic trackers alone, once per threshold set."""
    seed, hours, th_sets = job
    hist = generate(seed, Scenario(hours=hours))
    t = hist.tasks
    bounds = np.arange(math.floor(hist.start_ts / 60) * 60 + 60, hist.end_ts + 1, 60.0)
    runs = []
    for th in th_sets:
        alarms = []
        for c, name in enumerate(t.components):
            tracker = CyclicTracker(name, Thresholds.from_dict(th), c)
            m = (t.component == c) & t.failed
            ends, codes = t.end[m], t.failure_type[m]
            cut = np.searchsorted(ends, bounds, "left")
            prev = 0
            for b, j in zip(bounds.tolist(), cut.tolist(), strict=True):
                tracker.add(ends[prev:j].tolist(), codes[prev:j].tolist())
                prev = j
                a = tracker.close_minute(b)
                if a is not None:
                    alarms.append(a.to_dict())
        runs.append({"alarms": alarms, "seconds": 0.0})
    return {"seed": seed, "kind": "drawn", **described(hist), "runs": runs}


def calibrate_cyclic_drawn(seeds: list[int], hours: float, workers: int) -> None:
    """Cyclic thresholds from the fault-free hours of drawn scenarios, made stricter only.

    Fault-free scenarios miss what the 12-h cyclic window sees in the hours after another
    episode: a burst is one lump of failures, which passes the periodogram's power test at any
    period and lifts the folded z of its cycle. So the cyclic level is also checked on the
    drawn scenarios' fault-free hours (the report's definition) and the stricter level is kept.
    """
    current = load_thresholds()
    knobs = GRID["cyclic"]
    levels = len(next(iter(knobs.values())))
    sets = [
        replace(current, **{k: v[i] for k, v in knobs.items()}).to_dict() for i in range(levels)
    ]
    jobs = [(s, hours, sets) for s in seeds]
    if workers <= 1:
        results = [run_cyclic_seed(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(run_cyclic_seed, jobs))
    hours_ff = sum(fault_free(r, r["runs"][0])[0] for r in results)
    counts = [sum(len(fault_free(r, r["runs"][i])[1]) for r in results) for i in range(levels)]
    ok = [
        i
        for i, k in enumerate(counts)
        if k / hours_ff / INSTANCES["cyclic"] <= BUDGET_PER_INSTANCE_H
    ]
    pick = next((i for i in ok if all(j in ok for j in range(i, levels))), levels - 1)
    now = next(
        (i for i in range(levels) if all(getattr(current, k) == v[i] for k, v in knobs.items())),
        0,
    )
    pick = max(pick, now)
    recall = []
    for i in range(levels):
        hits = [
            hit_of(e, r["runs"][i]["alarms"]) is not None
            for r in results
            for e in r["episodes"]
            if e["pattern"] == "cyclic" and e["params"]["k"] >= 3
        ]
        recall.append(f"{sum(hits)}/{len(hits)}")
    print(f"cyclic on drawn seeds {seeds[0]}-{seeds[-1]}, {hours:g} h, {hours_ff:.0f} fault-free h")
    print(f"  false alarms per level {counts}; recall (k >= 3) per level {recall}")
    chosen = replace(current, **{k: v[pick] for k, v in knobs.items()})
    data = json.loads(THRESHOLDS_FILE.read_text())
    data.update({k: getattr(chosen, k) for k in knobs})
    data["calibrated_on"] += "; cyclic also on the fault-free hours of drawn seeds (48 h)"
    THRESHOLDS_FILE.write_text(json.dumps(data, indent=2) + "\n")
    print(
        f"  -> level {pick} { ({k: v[pick] for k, v in knobs.items()}) }; wrote {THRESHOLDS_FILE}"
    )


def calibrate(seeds: list[int], hours: float, workers: int) -> None:
    base = Thresholds()
    levels = len(next(iter(GRID["burst"].values())))
    sets = []
    for i in range(levels):
        th = base
        for knobs in GRID.values():
            th = replace(th, **{k: v[i] for k, v in knobs.items()})
        sets.append(th.to_dict())
    results = run_jobs([(s, "null", hours, sets) for s in seeds], workers)
    chosen = base
    print(f"calibration on seeds {seeds[0]}-{seeds[-1]}, {hours:g} h fault-free each")
    for pattern, knobs in GRID.items():
        counts = []
        for i in range(levels):
            hours_ff = sum(fault_free(r, r["runs"][i])[0] for r in results)
            k = sum(
                1
                for r in results
                for a in fault_free(r, r["runs"][i])[1]
                if a["pattern"] == pattern
            )
            counts.append((k, hours_ff))
        ok = [
            i
            for i, (k, h) in enumerate(counts)
            if k / h / INSTANCES[pattern] <= BUDGET_PER_INSTANCE_H
        ]
        # the least strict level from which every stricter level also meets the budget
        pick = next((i for i in ok if all(j in ok for j in range(i, levels))), levels - 1)
        chosen = replace(chosen, **{k: v[pick] for k, v in knobs.items()})
        print(
            f"  {pattern}: false alarms per level {[k for k, _ in counts]} over "
            f"{counts[0][1]:.0f} h -> level {pick} { ({k: v[pick] for k, v in knobs.items()}) }"
        )
    data = {
        "version": "1",
        "calibrated_on": f"seeds {seeds[0]}-{seeds[-1]}, {hours:g} h "
        "fault-free scenarios, budget 0.002 false alarms per hour per detector instance",
        **chosen.to_dict(),
    }
    THRESHOLDS_FILE.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {THRESHOLDS_FILE}")
