"""The end of the real-series detector's warm-up (`robust_metric`): transform, model and spans.

Split from `robust_metric.py` along the seam between the per-sample rules (there) and what is
decided once, from the warm-up samples: the variance-stabilising transform, the learnt baseline
(`baselines.RealSeriesModel`) and local family (`robust_local`) primed with those samples, and the
sample counts of the records and hold-off, capped in time so that hourly and per-second series
behave alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from prefect_ft.detection.baselines import RealSeriesModel, apply_transform, choose_transform
from prefect_ft.detection.robust_local import LocalDeviation
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["StreamStart", "at_most", "start_stream"]


@dataclass(frozen=True, slots=True)
class StreamStart:
    """What the warm-up decided: transform `tf` with offset `c`, the primed models, and spans."""

    tf: str
    c: float
    model: RealSeriesModel
    local: LocalDeviation | None
    dt: float  # median sample interval of the warm-up (s)
    rec_n: int  # samples a record remembers
    need: int  # samples the records need before the first day's margin is dropped
    holdoff: int  # samples of silence after an alarm


def start_stream(
    kind: str, th: Thresholds, warm_t: list[float], warm_x: list[float]
) -> StreamStart:
    """Choose the transform and build the models from the warm-up samples `warm_t`, `warm_x`."""
    # latencies are positive and multiplicative: always on the log scale, as in v1
    tf, c = ("log", 0.0) if kind == "latency" else choose_transform(np.asarray(warm_x))
    # a load is positive and multiplicative too (v6): the day scales it, and an outage is a
    # fraction of it, so read it on the log scale like a latency; counts keep Anscombe's
    # root, and data with zeros or negatives stay as they are
    if th.rm_throughput_log and kind == "throughput" and tf == "identity" and min(warm_x) > 0:
        tf, c = "log", 0.0
    dt = float(np.median(np.diff(warm_t))) if len(warm_t) > 1 else 0.0
    model = RealSeriesModel(
        dt,
        warm_t[0],
        flat_n=th.rm_flat_n,
        k_periods=th.rm_k_periods,
        scale_n=th.rm_scale_n,
        refresh=50,
        season_gain=th.rm_season_gain,
        min_scale=1.0 if tf == "anscombe" else 0.0,
    )
    rec_n = at_most(th.rm_record_n, th.rm_record_max_s, dt)
    local = None
    if th.rm_local_n > 0:
        local = LocalDeviation(th.rm_local_n, th.rm_local_scale_n, rec_n, th.rm_local_k)
    for tw, xw in zip(warm_t, warm_x, strict=True):
        yw = apply_transform(tf, c, xw)
        model.learn(tw, yw, model.predictions(tw), th.rm_clip)
        if local is not None:
            local.learn(yw)
    # sample counts are capped in time so that hourly and per-second series behave alike: the
    # records must first cover a day (what is normal at every hour) and remember at most
    # `rm_record_max_s`; a hold-off lasts at most a day
    need = at_most(th.rm_record_min, 86400.0, dt)
    holdoff = at_most(th.rm_holdoff, 86400.0, dt)
    return StreamStart(tf, c, model, local, dt, rec_n, need, holdoff)


def at_most(n: int, seconds: float, dt: float) -> int:
    """`n` samples, or fewer if they would span more than `seconds` at interval `dt`."""
    return max(1, min(n, math.ceil(seconds / dt))) if dt > 0 else n
