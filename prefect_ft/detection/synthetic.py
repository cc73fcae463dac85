"""Deterministic generator of labelled task-run histories (research/detection.md section 5).

`generate(seed)` simulates the 4-stage pipeline (non-homogeneous Poisson arrivals, log-normal
durations with a Pareto tail, c-slot queues, retries, base failures, memory and CPU samples every
10 s), injects up to 7 labelled episodes of the five patterns plus the negative controls, and
returns arrays ready for `DetectionEngine`. Each component, the schedule and every episode draw
from their own `SeedSequence(seed).spawn` stream, so one seed always gives byte-identical output
(`to_bytes`) and adding an episode does not shift the others' randomness.
The queueing simulation sits in `_simulate.py`, the episodes in `_episodes.py` and the resource
samples in `_resource_samples.py`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from prefect_ft.detection._episodes import (
    MIX,
    STAGES,
    START_TS,
    Episode,
    EpisodeSpec,
    cascade_type,
    draw_schedule,
    label,
)
from prefect_ft.detection._resource_samples import resource_samples
from prefect_ft.detection._simulate import CRASHED, FAILED, StageMods, arrivals, simulate_stage
from prefect_ft.detection.alarms import FailureType
from prefect_ft.detection.batch import ResourceBatch, TaskRunBatch

__all__ = [
    "GENERATOR_VERSION",
    "STAGES",
    "START_TS",
    "Episode",
    "EpisodeSpec",
    "Scenario",
    "SyntheticHistory",
    "generate",
    "to_bytes",
]

GENERATOR_VERSION = "1"
_FT = {f: f.code for f in FailureType}


@dataclass(frozen=True, slots=True)
class Scenario:
    """Generator settings; `episodes=None` draws them from the seed.

    `daily_load` in [0, 0.9] makes task durations follow the daily load: each duration is
    multiplied by 1 + daily_load * sin(2 pi t / 1 day), in phase with the arrivals' daily cycle
    (a busy hour is a slow hour). 0, the default, generates the histories of version 1.
    """

    hours: float = 48.0
    rate: float = 1.0
    episodes: tuple[EpisodeSpec, ...] | None = None
    negative_controls: bool = True
    daily_load: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.daily_load <= 0.9:
            raise ValueError(f"daily_load must be in [0, 0.9], not {self.daily_load!r}")


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticHistory:
    """Generator output: task runs, resource samples, episodes, plus the extra row columns."""

    seed: int
    start_ts: float
    end_ts: float
    tasks: TaskRunBatch
    resources: ResourceBatch
    episodes: tuple[Episode, ...]
    columns: dict[str, np.ndarray] = field(default_factory=dict)


def generate(seed: int, scenario: Scenario | None = None) -> SyntheticHistory:
    """Generate a labelled history; the same seed and version give byte-identical output.

    Args:
        seed: the seed.
        scenario: settings; by default 48 h at 1 flow/s with episodes drawn from the seed.

    Returns:
        Task runs, resource samples and episodes, times starting at 2025-01-01T00:00:00Z.
    """
    sc = scenario or Scenario()
    horizon = sc.hours * 3600.0
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(32)]
    arr_rng, stage_rngs, res_rngs, sched_rng, ctl_rng = (
        streams[0],
        streams[1:5],
        streams[5:9],
        streams[9],
        streams[10],
    )
    ep_rngs = streams[11:]
    specs = list(sc.episodes) if sc.episodes is not None else draw_schedule(sched_rng, sc.hours)
    mods = [StageMods(daily=sc.daily_load) for _ in STAGES]
    episodes: list[Episode] = []
    crowd = None
    leaks: list[tuple[int, float, float, float]] = []  # comp, onset, MB per s, crossing
    cpu_loads: list[tuple[int, float, float, float]] = []  # comp, onset, % per s, end
    if sc.negative_controls:
        crowd_at = float(ctl_rng.uniform(2 * 3600.0, max(2 * 3600.0 + 1, horizon - 3600.0)))
        crowd = (crowd_at, crowd_at + 600.0)
        job_comp = int(ctl_rng.integers(4))
        mods[job_comp].job = (3600.0, 120.0, 1.2, float(ctl_rng.uniform(0, 3600.0)))
        for _ in range(12):  # isolated single failures
            c = int(ctl_rng.integers(4))
            mods[c].forced.append(
                (float(ctl_rng.uniform(0, horizon)), _FT[FailureType.PROCESSING_ERROR], FAILED)
            )
        dep_comp = int(ctl_rng.integers(4))
        dep_at = float(
            ctl_rng.uniform(max(0.0, horizon - 10 * 3600.0), max(1.0, horizon - 4 * 3600.0))
        )
        mods[dep_comp].lat_windows.append((dep_at, horizon + 1.0, 1.1, 0.0))
        episodes += [
            Episode(
                -1,
                "none",
                (),
                START_TS + crowd[0],
                START_TS + crowd[1],
                START_TS + crowd[0],
                '{"control": "flash_crowd"}',
                "",
                "",
            ),
            Episode(
                -2,
                "maintenance",
                (STAGES[dep_comp].name,),
                START_TS + dep_at,
                START_TS + dep_at + 2 * 3600.0,
                START_TS + dep_at,
                '{"control": "deploy"}',
                "",
                "",
            ),
        ]
    cascades: list[tuple[int, EpisodeSpec, np.random.Generator]] = []
    for i, spec in enumerate(specs):
        p = dict(spec.params)
        rng = ep_rngs[i % len(ep_rngs)]
        on = spec.offset_s
        st = STAGES[spec.component]
        if spec.pattern == "burst":
            mods[spec.component].p_windows.append(
                (on, on + p["D_s"], min(0.9, p["m"] * st.p0), int(p["type"]), p["ramp_s"])
            )
        elif spec.pattern == "cyclic":
            phase = float(rng.uniform(0, p["P"]))
            for c in range(int(p["cycles"])):
                for _ in range(int(p["k"])):
                    t = on + phase + c * p["P"] + float(rng.normal(0, 0.02 * p["P"]))
                    mods[spec.component].forced.append((t, int(p["type"]), FAILED))
        elif spec.pattern == "degradation":
            mods[spec.component].lat_windows.append(
                (on, on + p["R_s"] + p["hold_s"], p["g"], p["R_s"])
            )
        elif spec.pattern == "exhaustion" and "s_mb_min" in p:
            cross = on + (st.limit_mb - st.base_mb) / p["s_mb_min"] * 60.0
            leaks.append((spec.component, on, p["s_mb_min"] / 60.0, cross))
            mods[spec.component].forced.append(
                (cross, _FT[FailureType.RESOURCE_EXHAUSTION], CRASHED)
            )
        elif spec.pattern == "exhaustion":
            cpu_loads.append((spec.component, on, p["x_pct_min"] / 60.0, 0.0))
        elif spec.pattern == "cascade":
            mods[spec.component].p_windows.append((on, on + p["D_s"], p["p"], int(p["type"]), 0.0))
            cascades.append((i, spec, rng))
    flow_t = arrivals(arr_rng, horizon, sc.rate, crowd)
    ready, flow = flow_t, np.arange(flow_t.size)
    parts = []
    fail_times: list[np.ndarray] = []
    for k, st in enumerate(STAGES):
        for _, spec, rng in cascades:
            if k > spec.component:
                p = dict(spec.params)
                lag = float(rng.uniform(1.0, 30.0))
                mods[k].cascade.append(
                    (
                        fail_times[k - 1],
                        lag,
                        p["q"],
                        spec.offset_s,
                        spec.offset_s + p["D_s"] + 120.0,
                        cascade_type(k),
                    )
                )
        out = simulate_stage(st, ready, flow, stage_rngs[k], MIX, mods[k])
        out["comp"] = np.full(out["end"].size, k, dtype=np.int64)
        parts.append(out)
        fail_times.append(np.sort(out["end"][out["state"] != 0]))
        ready, flow = out["done_end"], out["done_flow"]
    ts, res = resource_samples(horizon, parts, res_rngs, leaks, cpu_loads)
    for i, spec in enumerate(specs):
        episodes.append(label(i, spec, parts, res, cpu_loads))
    rows = {
        k: np.concatenate([p[k] for p in parts])
        for k in ("start", "end", "state", "type", "flow", "attempt", "comp")
    }
    order = np.lexsort((rows["comp"], rows["end"]))
    rows = {k: v[order] for k, v in rows.items()}
    names = tuple(s.name for s in STAGES)
    failed = rows["state"] != 0
    nearest = np.clip(np.round(rows["start"] / 10.0).astype(np.int64), 0, ts.size - 1)
    tasks = TaskRunBatch(
        names,
        rows["start"] + START_TS,
        rows["end"] + START_TS,
        failed,
        np.where(failed, rows["type"], -1),
        rows["comp"],
    )
    resources = ResourceBatch(names, res["ts"], res["comp"], res["mem"], res["limit"], res["cpu"])
    columns = {
        "flow_run_id": rows["flow"],
        "task_run_id": np.arange(order.size),
        "attempt": rows["attempt"],
        "state": rows["state"],
        "memory_mb": res["mem"].reshape(4, -1)[rows["comp"], nearest],
        "cpu_pct": res["cpu"].reshape(4, -1)[rows["comp"], nearest],
    }
    return SyntheticHistory(
        seed,
        START_TS,
        START_TS + horizon,
        tasks,
        resources,
        tuple(sorted(episodes, key=lambda e: (e.onset_ts, e.episode_id))),
        columns,
    )


def to_bytes(history: SyntheticHistory) -> bytes:
    """A canonical byte serialisation (for the byte-identical check and fingerprints)."""
    h = hashlib.sha256()
    t, r = history.tasks, history.resources
    for arr in (
        t.start,
        t.end,
        t.failed,
        t.failure_type,
        t.component,
        r.ts,
        r.component,
        r.memory_mb,
        r.memory_limit_mb,
        r.cpu_pct,
        *history.columns.values(),
    ):
        h.update(np.ascontiguousarray(arr).tobytes())
    labels = [
        [
            e.episode_id,
            e.pattern,
            list(e.components),
            repr(e.onset_ts),
            repr(e.end_ts),
            repr(e.detectable_ts),
            e.params,
            e.expected_error_type,
            e.expected_severity,
        ]
        for e in history.episodes
    ]
    return h.digest() + json.dumps(labels).encode()
