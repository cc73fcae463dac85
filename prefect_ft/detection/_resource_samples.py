"""Resource samples of the synthetic pipeline: memory and CPU every 10 s per component.

Memory is the stage's base plus 50 MB per running task, a garbage-collection sawtooth (5 % of
base, 3 min) and 1 % noise; CPU is 15 % plus 70 % of the stage's occupancy plus noise. Leak
episodes add a linear rise of the floor until it crosses the limit; CPU-load episodes add a ramp
(capped at 100 points) that stops 10 min after it has added 85 points. Kept apart from
`synthetic.generate`, which draws the episodes and runs the stages; each stage draws from its own
stream in the order it did inside `generate`, so histories stay byte-identical (`to_bytes`).
"""

from __future__ import annotations

import numpy as np

from prefect_ft.detection._episodes import STAGES, START_TS
from prefect_ft.detection._simulate import active_tasks, sawtooth

__all__ = ["resource_samples"]


def resource_samples(
    horizon: float,
    parts: list[dict[str, np.ndarray]],
    res_rngs: list[np.random.Generator],
    leaks: list[tuple[int, float, float, float]],
    cpu_loads: list[tuple[int, float, float, float]],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Samples of every stage over `[0, horizon)`, from its simulated runs `parts[k]`.

    Args:
        horizon: the history's length (s).
        parts: each stage's simulated runs (`simulate_stage` output, times from 0).
        res_rngs: one random stream per stage.
        leaks: (component, onset, MB per s, crossing time) of memory leaks.
        cpu_loads: (component, onset, % per s, unused) of CPU-load episodes.

    Returns:
        The sample times from 0 (one grid for all stages) and the columns ts (epoch), comp,
        mem, limit and cpu, stage after stage.
    """
    ts = np.arange(0.0, horizon, 10.0)
    res_cols: dict[str, list[np.ndarray]] = {
        "ts": [],
        "comp": [],
        "mem": [],
        "limit": [],
        "cpu": [],
    }
    for k, st in enumerate(STAGES):
        rng = res_rngs[k]
        act = active_tasks(parts[k]["start"], parts[k]["end"], ts)
        mem = (
            st.base_mb
            + 50.0 * act
            + 0.05 * st.base_mb * sawtooth(ts, 180.0, float(rng.uniform(0, 180)))
            + rng.normal(0, 0.01 * st.base_mb, ts.size)
        )
        cpu = 15.0 + 70.0 * act / st.cap + rng.normal(0, 3.0, ts.size)
        for comp, on, per_s, cross in leaks:
            if comp == k:
                mem = mem + np.where((ts >= on) & (ts < cross), (ts - on) * per_s, 0.0)
        for comp, on, per_s, _ in cpu_loads:
            if comp == k:
                cpu = cpu + np.where(ts >= on, np.minimum((ts - on) * per_s, 100.0), 0.0) * (
                    ts < on + 85.0 / per_s + 600.0
                )
        res_cols["ts"].append(ts + START_TS)
        res_cols["comp"].append(np.full(ts.size, k, dtype=np.int64))
        res_cols["mem"].append(mem)
        res_cols["limit"].append(np.full(ts.size, st.limit_mb))
        res_cols["cpu"].append(np.clip(cpu, 0.0, 100.0))
    return ts, {k: np.concatenate(v) for k, v in res_cols.items()}
