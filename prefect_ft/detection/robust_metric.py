"""Spike and level-shift decisions on real metric series (kinds latency, throughput, generic).

The residual of `baselines.RealSeriesModel` (transformed value minus the learnt flat or seasonal
prediction, over its robust scale) is a robust z. Two rules read it, as in the v1 detector but
on a baseline that knows seasons, skew and counts:

- a **spike**: |z| above `rm_spike_z` on one sample (two-sided where the kind calls for it: a load
  can spike or drop; a latency only matters going up);
- a **level shift**: a two-sided CUSUM on z clipped at `deg_z_clip` (Page 1954), crossing
  `rm_h`.

After either the flat level is relearnt, so a lasting shift raises one alarm.

Both also have to set a **record**: the statistic must exceed `rm_record_margin` times its
largest value over the last `rm_record_n` ordinary samples (one record per direction). Under
exchangeable data a new maximum of M samples has probability 1/(M+1) whatever the distribution,
so this caps the false-alarm rate of heavy-tailed and autocorrelated residuals that a fixed z
threshold cannot (the order-statistics argument behind extreme-value thresholds such as SPOT,
Siffer et al. 2017); the margin then asks for a clear record, not a tie.

After any alarm the detector stays silent for `rm_holdoff` samples (the episode is already
reported) while it keeps learning. Everything is causal: a prefix gives the same alarms.
"""

from __future__ import annotations

import math

import numpy as np

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity, Skipped
from prefect_ft.detection.baselines import (
    RealSeriesModel,
    SlidingMax,
    apply_transform,
    choose_transform,
)
from prefect_ft.detection.degradation import degradation_severity
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["robust_shifts", "z_severity"]


def z_severity(z: float) -> Severity:
    """Severity of a spike or shift by its robust z (5, 10 and 20 scales: MEDIUM, HIGH, CRITICAL)."""
    a = abs(z)
    if a >= 20:
        return Severity.CRITICAL
    if a >= 10:
        return Severity.HIGH
    return Severity.MEDIUM if a >= 5 else Severity.LOW


def robust_shifts(
    ts: np.ndarray, vs: np.ndarray, kind: str, th: Thresholds, skipped: list[Skipped]
) -> list[Alarm]:
    """Alarms on a cleaned series (finite, strictly increasing timestamps)."""
    up_ok = kind in ("latency", "generic", "throughput")
    down_ok = kind in ("generic", "throughput")
    warmup = max(th.metric_warmup, th.rm_warmup)
    warm_t: list[float] = []
    warm_x: list[float] = []
    model: RealSeriesModel | None = None
    tf, c = "identity", 0.0
    alarms: list[Alarm] = []
    up = down = 0.0
    zero_up = zero_down = float(ts[0]) if ts.size else 0.0
    hold = 0
    # records per statistic: z up, z down, CUSUM up, CUSUM down
    rec = [SlidingMax(th.rm_record_n) for _ in range(4)]
    margin = th.rm_record_margin
    need, holdoff = th.rm_record_min, th.rm_holdoff
    for t, x in zip(ts.tolist(), vs.tolist(), strict=True):
        if model is None:
            warm_t.append(t)
            warm_x.append(x)
            if len(warm_t) < warmup:
                continue
            # latencies are positive and multiplicative: always on the log scale, as in v1
            tf, c = ("log", 0.0) if kind == "latency" else choose_transform(np.asarray(warm_x))
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
            for tw, xw in zip(warm_t, warm_x, strict=True):
                yw = apply_transform(tf, c, xw)
                model.learn(tw, yw, model.predictions(tw), th.rm_clip)
            zero_up = zero_down = t
            # sample counts are capped in time so that hourly and per-second series behave
            # alike: the records must first cover a day (what is normal at every hour) and
            # remember at most `rm_record_max_s`; a hold-off lasts at most a day
            need = _at_most(th.rm_record_min, 86400.0, dt)
            holdoff = _at_most(th.rm_holdoff, 86400.0, dt)
            rec = [SlidingMax(_at_most(th.rm_record_n, th.rm_record_max_s, dt)) for _ in range(4)]
            continue
        y = apply_transform(tf, c, x)
        preds = model.predictions(t)
        p = preds[model.choice]
        if p is None or not model.ready() or hold > 0:
            hold = max(0, hold - 1)
            zero_up = zero_down = t
            model.learn(t, y, preds, th.rm_clip)
            if p is not None and model.ready() and hold == 0:
                z = (y - p) / model.scale
                for r, v in zip(rec, (z, -z, 0.0, 0.0), strict=True):
                    r.push(v)  # the new normal after an episode sets the records
            continue
        z = (y - p) / model.scale
        zc = max(-th.deg_z_clip, min(th.deg_z_clip, z))
        up = max(0.0, up + zc - th.metric_k)
        down = max(0.0, down - zc - th.metric_k)
        zero_up = t if up == 0.0 else zero_up
        zero_down = t if down == 0.0 else zero_down
        fired: tuple[str, float, float] | None = None
        if z > th.rm_spike_z and up_ok and z > margin * rec[0].max():
            fired = ("spike", t, z)
        elif -z > th.rm_spike_z and down_ok and -z > margin * rec[1].max():
            fired = ("spike", t, -z)
        elif up > th.rm_h and up_ok and up > margin * rec[2].max():
            fired = ("rise", zero_up, up)
        elif down > th.rm_h and down_ok and down > margin * rec[3].max():
            fired = ("drop", zero_down, down)
        if fired is not None and rec[0].i < need:
            fired = None
        if fired is None:
            for r, v in zip(rec, (z, -z, up, down), strict=True):
                r.push(v)
        if fired is not None:
            how, onset, score = fired
            alarms.append(_alarm(how, onset, t, score, kind, x, p, z, tf, c, model.model_name))
            hold = holdoff
            up = down = 0.0
            # the first sample of a step looks like a spike: relearn the level after either
            model.relearn_level()
        model.learn(t, y, preds, th.rm_clip)
    if model is None or rec[0].i < need:
        skipped.append(
            Skipped(
                "learning",
                int(ts.size),
                "too few samples to know what is normal yet (a day, or "
                f"{max(th.rm_warmup, th.rm_record_min)} samples)",
            )
        )
    if model is not None and model.degenerate:
        skipped.append(
            Skipped(
                "constant_series",
                int(ts.size),
                "the learnt baseline has no spread; only a change can alarm",
            )
        )
    return alarms


def _at_most(n: int, seconds: float, dt: float) -> int:
    """`n` samples, or fewer if they would span more than `seconds` at interval `dt`."""
    return max(1, min(n, math.ceil(seconds / dt))) if dt > 0 else n


def _inverse(tf: str, c: float, y: float) -> float:
    if tf == "anscombe":
        return max(0.0, (y / 2.0) ** 2 - c)
    if tf == "log":
        return math.exp(min(y, 700.0)) - c
    return y


def _alarm(
    how: str,
    onset: float,
    at: float,
    score: float,
    kind: str,
    x: float,
    pred: float,
    z: float,
    tf: str,
    c: float,
    model: str,
) -> Alarm:
    base = _inverse(tf, c, pred)
    if kind == "latency" or (kind == "throughput" and z < 0):
        pattern = Pattern.DEGRADATION
        ftype = FailureType.PERFORMANCE_DEGRADATION
        ratio = x / base if kind == "latency" else base / max(x, 1e-12)
        severity = degradation_severity(ratio if base > 0 else 1.0)
    else:
        pattern = Pattern.SPIKE if how == "spike" else Pattern.LEVEL_SHIFT
        ftype = (
            FailureType.PERFORMANCE_DEGRADATION
            if kind == "throughput"
            else FailureType.PROCESSING_ERROR
        )
        severity = z_severity(z)
    return Alarm(
        pattern=pattern,
        components=(),
        onset=float(onset),
        at=float(at),
        severity=severity,
        failure_type=ftype,
        score=float(score),
        evidence=(("value", x), ("baseline", base), ("z", z)),
        explanation=(
            f"{kind} {how}: {x:.4g} against a learnt {model} baseline of {base:.4g} "
            f"({tf} scale, z = {z:.1f})"
        ),
    )
