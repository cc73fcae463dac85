"""Episode labels and schedules of the synthetic generator (research/detection.md section 5)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from prefect_ft.detection._simulate import StageSpec
from prefect_ft.detection.alarms import FAILURE_TYPES, FailureType
from prefect_ft.detection.burst import burst_severity
from prefect_ft.detection.cyclic import cyclic_severity
from prefect_ft.detection.degradation import degradation_severity
from prefect_ft.detection.propagation import cascade_severity

__all__ = [
    "MIX",
    "STAGES",
    "START_TS",
    "Episode",
    "EpisodeSpec",
    "cascade_type",
    "draw_schedule",
    "label",
]

START_TS = 1735689600.0  # 2025-01-01T00:00:00Z
STAGES = (
    StageSpec("doc-processing", 0.8, 0.5, 8, 0.005, 10.0, 2048.0, 4096.0),
    StageSpec("ml-inference", 2.5, 0.4, 4, 0.01, 30.0, 6144.0, 16384.0),
    StageSpec("ipc", 0.05, 0.6, 16, 0.002, 10.0, 512.0, 4096.0),
    StageSpec("quality-validation", 0.3, 0.4, 8, 0.01, 10.0, 1024.0, 4096.0),
)
_FT = {f: f.code for f in FailureType}
# normal mix: Processing 40 %, Validation 25 %, Timeout 15 %, Connection 10 %, Network 5 %, Model 5 %
MIX = np.zeros(8)
for _t, _p in (
    (FailureType.PROCESSING_ERROR, 0.40),
    (FailureType.VALIDATION_ERROR, 0.25),
    (FailureType.TIMEOUT, 0.15),
    (FailureType.CONNECTION_ERROR, 0.10),
    (FailureType.NETWORK_ERROR, 0.05),
    (FailureType.MODEL_INFERENCE_ERROR, 0.05),
):
    MIX[_t.code] = _p
_PATTERNS = ("burst", "burst", "degradation", "cyclic", "exhaustion", "cascade", "cascade")
_GAP_S = 2 * 3600.0


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    """An episode to inject: pattern, component (the root for a cascade), offset and parameters.

    Parameters by pattern: burst `m, D_s, ramp_s, type`; cyclic `P, k, cycles, type`;
    degradation `g, R_s, hold_s`; exhaustion `s_mb_min` or `x_pct_min`; cascade `q, D_s, p, type`
    (`type` is a `FailureType.code`).
    """

    pattern: str
    component: int
    offset_s: float
    params: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Episode:
    """A labelled episode (ground truth). `pattern` "none" marks a negative control and
    "maintenance" a window excluded from scoring."""

    episode_id: int
    pattern: str
    components: tuple[str, ...]
    onset_ts: float
    end_ts: float
    detectable_ts: float
    params: str
    expected_error_type: str
    expected_severity: str


def draw_schedule(rng: np.random.Generator, hours: float) -> list[EpisodeSpec]:
    horizon = hours * 3600.0
    out: list[EpisodeSpec] = []
    cursor = 2 * 3600.0
    busy = 0.0
    for pattern in rng.permutation(np.array(_PATTERNS)).tolist():
        comp = int(rng.integers(4))
        if pattern == "burst":
            params = {
                "m": float(rng.choice([3, 5, 10, 30])),
                "D_s": 60.0 * float(rng.choice([2, 5, 20])),
                "ramp_s": float(rng.choice([0.0, 30.0])),
                "type": float(
                    rng.choice(
                        [_FT[FailureType.CONNECTION_ERROR], _FT[FailureType.MODEL_INFERENCE_ERROR]]
                    )
                ),
            }
            length = params["D_s"]
        elif pattern == "cyclic":
            params = {
                "P": float(rng.choice([60, 300, 900, 3600])),
                "k": float(rng.choice([1, 2, 3, 5])),
                "cycles": float(rng.integers(12, 15)),
                "type": float(
                    rng.choice([_FT[FailureType.TIMEOUT], _FT[FailureType.RESOURCE_EXHAUSTION]])
                ),
            }
            length = params["P"] * params["cycles"]
        elif pattern == "degradation":
            params = {
                "g": float(rng.choice([1.2, 1.5, 2.0, 3.0])),
                "R_s": 60.0 * float(rng.choice([10, 60, 360])),
                "hold_s": 1800.0,
            }
            length = params["R_s"] + params["hold_s"]
        elif pattern == "exhaustion":
            if rng.random() < 0.8:
                params = {"s_mb_min": float(rng.choice([2, 10, 30, 100]))}
                spec = STAGES[comp]
                length = (spec.limit_mb - spec.base_mb) / params["s_mb_min"] * 60.0
            else:
                params = {"x_pct_min": float(rng.choice([0.5, 2.0]))}
                length = 85.0 / params["x_pct_min"] * 60.0 + 600.0
        else:
            comp = int(rng.integers(3))  # a cascade root is never the sink
            outage = rng.random() < 0.5
            params = {
                "q": float(rng.choice([0.3, 0.6, 0.9])),
                "D_s": 120.0 if outage else 300.0,
                "p": 0.9 if outage else min(0.9, 30 * STAGES[comp].p0),
                "type": float(
                    rng.choice(
                        [_FT[FailureType.CONNECTION_ERROR], _FT[FailureType.MODEL_INFERENCE_ERROR]]
                    )
                ),
            }
            length = params["D_s"] + 120.0
        start = cursor + float(rng.uniform(0, 3600.0))
        if start + length + 3600.0 > horizon or busy + length + _GAP_S > horizon - 24 * 3600.0:
            continue
        out.append(EpisodeSpec(pattern, comp, start, tuple(params.items())))
        cursor = start + length + _GAP_S
        busy += length + _GAP_S
    return out


def cascade_type(k: int) -> int:
    return _FT[
        FailureType.CONNECTION_ERROR
        if STAGES[k].name == "ipc"
        else FailureType.VALIDATION_ERROR
        if k == 3
        else FailureType.PROCESSING_ERROR
    ]


def label(
    i: int,
    spec: EpisodeSpec,
    parts: list[dict[str, np.ndarray]],
    res: dict[str, np.ndarray],
    cpu_loads: list[tuple[int, float, float, float]],
) -> Episode:
    p = dict(spec.params)
    on = spec.offset_s
    names = (STAGES[spec.component].name,)
    ftype = FAILURE_TYPES[int(p["type"])] if "type" in p else None
    if spec.pattern == "burst":
        end, detectable, sev = on + p["D_s"], on, burst_severity(p["m"], 0.0)
    elif spec.pattern == "cyclic":
        end, detectable = on + p["P"] * p["cycles"], on + 8 * p["P"]
        sev = cyclic_severity(p["k"] * 3600.0 / p["P"])
    elif spec.pattern == "degradation":
        end, detectable = on + p["R_s"] + p["hold_s"], on
        sev, ftype = degradation_severity(p["g"]), FailureType.PERFORMANCE_DEGRADATION
    elif spec.pattern == "exhaustion":
        ftype, detectable = FailureType.RESOURCE_EXHAUSTION, on
        if "s_mb_min" in p:
            st = STAGES[spec.component]
            end = on + (st.limit_mb - st.base_mb) / p["s_mb_min"] * 60.0
        else:  # CPU reaches 100 % when the load fills the headroom left at onset
            k = spec.component
            m = (
                (res["comp"] == k)
                & (res["ts"] >= START_TS + on - 3600)
                & (res["ts"] < START_TS + on)
            )
            head = 100.0 - float(np.mean(res["cpu"][m])) if m.any() else 85.0
            end = on + max(0.0, head) / p["x_pct_min"] * 60.0
        sev = "CRITICAL" if end - on < 1800 else "HIGH"
    else:
        end, detectable = on + p["D_s"] + 120.0, on
        lo, hi = on, end + 60.0
        affected = [spec.component]
        for k in range(spec.component + 1, len(STAGES)):
            pk = parts[k]
            induced = (
                (pk["type"] == cascade_type(k)) & (pk["start"] >= lo) & (pk["start"] < hi)
            ).sum()
            if induced >= 10:
                affected.append(k)
            else:
                break
        names = tuple(STAGES[k].name for k in affected)
        sev = cascade_severity(len(names))
    return Episode(
        i,
        spec.pattern,
        names,
        START_TS + on,
        START_TS + end,
        START_TS + detectable,
        json.dumps(p, sort_keys=True),
        str(ftype or ""),
        str(sev),
    )
