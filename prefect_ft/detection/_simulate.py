"""Queueing simulation behind `synthetic.generate` (research/detection.md section 5): the flow
arrivals and each stage's c-slot queue."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["StageMods", "StageSpec", "simulate_stage"]

COMPLETED, FAILED, CRASHED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One pipeline stage's defaults."""

    name: str
    median_s: float
    sigma: float
    cap: int
    p0: float
    timeout_s: float
    base_mb: float
    limit_mb: float


@dataclass(slots=True)
class StageMods:
    """Episode effects on one stage (times are absolute epoch seconds).

    `p_windows`: (start, end, p, type_code or -1 for the normal mix, ramp_s);
    `lat_windows`: (start, end, g, ramp_s) multiply durations by up to g;
    `forced`: (time, type_code, state): the first task starting at or after `time` fails;
    `cascade`: (upstream failure times, lag_s, q, start, end, type_code).
    """

    p_windows: list[tuple[float, float, float, int, float]] = field(default_factory=list)
    lat_windows: list[tuple[float, float, float, float]] = field(default_factory=list)
    forced: list[tuple[float, int, int]] = field(default_factory=list)
    cascade: list[tuple[np.ndarray, float, float, float, float, int]] = field(default_factory=list)
    job: tuple[float, float, float, float] | None = None  # (period, length, factor, offset)
    # durations x (1 + daily sin(2 pi t / 1 day)): busy hours are slower (shared hosts, caches),
    # in phase with the arrivals' daily cycle; 0 leaves every duration (and byte) unchanged
    daily: float = 0.0


def _lat_factor(t: float, mods: StageMods) -> float:
    f = 1.0
    for start, end, g, ramp in mods.lat_windows:
        if start <= t < end:
            frac = min(1.0, (t - start) / ramp) if ramp > 0 else 1.0
            f *= 1.0 + (g - 1.0) * frac
    if mods.job is not None:
        period, length, factor, offset = mods.job
        if (t - offset) % period < length:
            f *= factor
    if mods.daily:
        f *= 1.0 + mods.daily * math.sin(2.0 * math.pi * t / 86400.0)
    return f


def simulate_stage(
    spec: StageSpec,
    ready: np.ndarray,
    flow: np.ndarray,
    rng: np.random.Generator,
    mix: np.ndarray,
    mods: StageMods,
) -> dict[str, np.ndarray]:
    """Run one stage's tasks through a c-slot queue with retries.

    Args:
        spec: the stage.
        ready: time each flow's task becomes ready (any order).
        flow: flow id per entry of `ready`.
        rng: the stage's own random stream.
        mix: probabilities of the 8 failure-type codes for ordinary failures.
        mods: episode effects.

    Returns:
        Row arrays (one per attempt) and `done`: flow ids and end times of tasks that succeeded.
    """
    order = np.argsort(ready, kind="stable")
    ready, flow = ready[order], flow[order]
    n = ready.size
    # draws per task and attempt, made up front so an episode never shifts the stream
    z = rng.standard_normal((n, 3))
    tail = rng.random((n, 3)) < 0.02
    pareto = rng.pareto(2.5, (n, 3))
    u_fail = rng.random((n, 3))
    u_casc = rng.random((n, 3))
    jitter = rng.random((n, 3))
    types = rng.choice(8, size=(n, 3), p=mix)
    u_type = rng.random((n, 3))
    base_dur = spec.median_s * np.exp(spec.sigma * z) * np.where(tail, 1.0 + pareto, 1.0)
    forced = sorted(mods.forced)
    fi = 0
    slots = [0.0] * spec.cap
    heapq.heapify(slots)
    out_start: list[float] = []
    out_end: list[float] = []
    out_state: list[int] = []
    out_type: list[int] = []
    out_flow: list[int] = []
    out_attempt: list[int] = []
    done_flow: list[int] = []
    done_end: list[float] = []
    pw = mods.p_windows
    cascades = [(np.sort(c[0]), *c[1:]) for c in mods.cascade]
    pending: list[tuple[float, int, int]] = [(float(r), i, 0) for i, r in enumerate(ready.tolist())]
    heapq.heapify(pending)
    while pending:
        t_ready, i, r = heapq.heappop(pending)
        start = max(t_ready, slots[0])
        p = spec.p0
        ptype = -1
        for ws, we, wp, wtype, ramp in pw:
            if ws <= start < we:
                frac = min(1.0, (start - ws) / ramp) if ramp > 0 else 1.0
                p = max(p, spec.p0 + (wp - spec.p0) * frac)
                ptype = wtype
        dur = float(base_dur[i, r])
        if mods.lat_windows or mods.job is not None or mods.daily:
            dur *= _lat_factor(start, mods)
        state, ftype = COMPLETED, -1
        if fi < len(forced) and start >= forced[fi][0]:
            state, ftype = forced[fi][2], forced[fi][1]
            fi += 1
        elif dur >= spec.timeout_s:
            dur, state, ftype = spec.timeout_s, FAILED, 0  # Timeout
        elif u_fail[i, r] < p:
            state = FAILED
            ftype = ptype if (ptype >= 0 and u_type[i, r] < 0.7) else int(types[i, r])
        else:
            for times, lag, q, cs, ce, ctype in cascades:
                if cs <= start < ce and u_casc[i, r] < q:
                    k = int(np.searchsorted(times, start, side="right"))
                    if k and times[k - 1] >= start - lag:
                        state, ftype = FAILED, ctype
                        break
        end = start + dur
        heapq.heapreplace(slots, end)
        out_start.append(start)
        out_end.append(end)
        out_state.append(state)
        out_type.append(ftype)
        out_flow.append(int(flow[i]))
        out_attempt.append(r)
        if state == COMPLETED:
            done_flow.append(int(flow[i]))
            done_end.append(end)
        elif r < 2:
            # retry backoff 2^(r+1) s plus up to 1 s of jitter
            heapq.heappush(pending, (end + 2.0 ** (r + 1) + float(jitter[i, r]), i, r + 1))
    return {
        "start": np.asarray(out_start),
        "end": np.asarray(out_end),
        "state": np.asarray(out_state, dtype=np.int8),
        "type": np.asarray(out_type, dtype=np.int8),
        "flow": np.asarray(out_flow, dtype=np.int64),
        "attempt": np.asarray(out_attempt, dtype=np.int8),
        "done_flow": np.asarray(done_flow, dtype=np.int64),
        "done_end": np.asarray(done_end),
    }


def active_tasks(start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Tasks running at each time in `t`."""
    return np.searchsorted(np.sort(start), t, "right") - np.searchsorted(np.sort(end), t, "right")


def sawtooth(t: np.ndarray, period: float, phase: float) -> np.ndarray:
    """A rising sawtooth in [0, 1) (garbage-collected memory)."""
    return np.mod(t + phase, period) / period


def crossing_time(base: float, slope_per_s: float, limit: float) -> float:
    """When a floor growing linearly from `base` reaches `limit` (seconds after onset)."""
    return math.inf if slope_per_s <= 0 else (limit - base) / slope_per_s


def arrivals(
    rng: np.random.Generator, horizon: float, rate: float, crowd: tuple[float, float] | None
) -> np.ndarray:
    """Flow arrival times in `[0, horizon)`, x3 inside the flash crowd `crowd` (start, end)."""
    # non-homogeneous Poisson by thinning: lambda(t) = rate (1 + 0.3 sin(2 pi t / 1 day)), x3 in a crowd
    lam_max = rate * 1.3 * (3.0 if crowd else 1.0)
    n = int(rng.poisson(lam_max * horizon))
    t = np.sort(rng.uniform(0.0, horizon, n))
    lam = rate * (1.0 + 0.3 * np.sin(2 * np.pi * t / 86400.0))
    if crowd:
        lam = np.where((t >= crowd[0]) & (t < crowd[1]), 3.0 * lam, lam)
    return t[rng.random(n) * lam_max < lam]
