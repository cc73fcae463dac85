"""Runs of the detection engine over generated histories, one job per seed, for the benchmark.

A job names a seed, a scenario kind (with the engine options as suffixes: "+bt", "+cm", "+tp",
"@load") and the threshold sets to try; a result holds the history's labelled episodes and each
run's alarms, as plain JSON-ready data the scorer (`detection_scoring.py`) reads. Jobs run in
worker processes, so everything here is importable and picklable.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks.detection_scenarios import sweep, targeted
from prefect_ft.detection import DetectionEngine, EngineConfig, Thresholds
from prefect_ft.detection.synthetic import Scenario, generate

__all__ = ["described", "run_jobs", "run_seed"]


def run_seed(job: tuple[int, str, float, list[dict[str, Any]]]) -> dict[str, Any]:
    """Generate one history and run the engine once per threshold set."""
    seed, kind, hours, th_sets = job
    # "+bt": the burst hold-off per failure type (`EngineConfig.burst_holdoff_by_type`)
    by_type = "+bt" in kind
    kind = kind.replace("+bt", "")
    # "+cm": degradation judged relative to the other stages (`degradation_common_mode`)
    common = "+cm" in kind
    kind = kind.replace("+cm", "")
    # "+tp": each threshold set runs twice, without and with the throughput detector
    both = kind.endswith("+tp")
    kind, _, load = kind.removesuffix("+tp").partition("@")  # "drawn@0.3": daily load of 0.3
    scenario = (
        targeted(seed)
        if kind == "targeted"
        else sweep(seed, kind.removeprefix("sweep-"))
        if kind.startswith("sweep-")
        else Scenario(hours=hours, episodes=())
        if kind == "null"
        else Scenario(hours=hours, daily_load=float(load or 0.0))
    )
    hist = generate(seed, scenario)
    runs = []
    # without "+tp" the engine's default (the throughput detector on since 2026-12-02)
    default = EngineConfig().throughput
    for th, tput in ((t, tp) for t in th_sets for tp in ((False, True) if both else (default,))):
        config = EngineConfig(
            thresholds=Thresholds.from_dict(th),
            throughput=tput,
            burst_holdoff_by_type=by_type,
            degradation_common_mode=common,
        )
        engine = DetectionEngine(config)
        t0 = time.perf_counter()
        alarms = engine.update(hist.tasks, hist.resources).alarms
        runs.append({"alarms": [a.to_dict() for a in alarms], "seconds": time.perf_counter() - t0})
    return {"seed": seed, "kind": kind, **described(hist), "runs": runs}


def described(hist: Any) -> dict[str, Any]:
    """A history's span, size and labelled episodes, as the scorer reads them."""
    return {
        "start": hist.start_ts,
        "end": hist.end_ts,
        "n_tasks": len(hist.tasks),
        "episodes": [
            {
                "pattern": e.pattern,
                "components": list(e.components),
                "onset": e.onset_ts,
                "end": e.end_ts,
                "detectable": e.detectable_ts,
                "params": json.loads(e.params),
                "type": e.expected_error_type,
                "severity": e.expected_severity,
            }
            for e in hist.episodes
        ],
    }


def run_jobs(jobs: list[Any], workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        return [run_seed(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(run_seed, jobs))
