"""Compute-time measurements of the detection engine: a full pass and an incremental update.

Section 6 of research/detection.md sets both targets. Wall and CPU time are printed side by
side, because on a shared machine the wall time is mostly the scheduler's; they are
measurements, not scores, so they sit apart from `detection_scoring.py`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from prefect_ft.detection import DetectionEngine, EngineConfig
from prefect_ft.detection.synthetic import Scenario, generate

__all__ = ["incremental_timing", "pass_times"]


def incremental_timing(hours: float = 26.0) -> str:
    """p99 of one `update` with 10 s of new data, after 24 h of history."""
    hist = generate(1000, Scenario(hours=hours))
    t, r = hist.tasks, hist.resources
    engine = DetectionEngine(EngineConfig())
    warm = hist.start_ts + 24 * 3600.0
    engine.update(t.between(-math.inf, warm), r.between(-math.inf, warm), until=warm)
    times, cpu = [], []
    for lo in np.arange(warm, hist.end_ts - 10.0, 10.0):
        tb, rb = t.between(lo, lo + 10.0), r.between(lo, lo + 10.0)
        t0, c0 = time.perf_counter(), time.process_time()
        engine.update(tb, rb, until=lo + 10.0)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    ms, cms = np.array(times) * 1e3, np.array(cpu) * 1e3
    # CPU time too: on a shared machine the wall p99 is mostly the scheduler's time slices
    return (
        f"Incremental update (10 s of new rows, after 24 h): {ms.size} updates, median "
        f"{np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms; "
        f"CPU median {np.median(cms):.2f} ms, p99 {np.percentile(cms, 99):.2f} ms, "
        f"max {cms.max():.2f} ms"
    )


def pass_times(seeds: tuple[int, ...] = (5, 1000, 1001), repeats: int = 3) -> str:
    """Wall time of one full pass over a fault-free 24-h history (the section-6 compute case)."""
    lines = []
    for seed in seeds:
        hist = generate(seed, Scenario(hours=24.0, episodes=()))
        walls, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            DetectionEngine(EngineConfig()).update(hist.tasks, hist.resources)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        lines.append(
            f"seed {seed}: {len(hist.tasks)} task rows, full pass s "
            f"{[round(w, 2) for w in walls]}, median {np.median(walls):.2f}; "
            f"CPU s {[round(c, 2) for c in cpus]}, median {np.median(cpus):.2f}"
        )
    return "\n".join(lines)
