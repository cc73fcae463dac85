"""`detect_metric`: the stable entry point for one metric stream (latency, throughput, ...).

It learns the stream's normal behaviour as it goes (no labels, no look-ahead): a robust baseline
(median and 1.4826 * MAD of accepted samples) feeds a CUSUM on robust z (Page 1954), so running
it on a prefix returns exactly the full run's alarms up to the prefix's end. After an alarm the
baseline is relearnt from the new data, so a lasting shift raises one alarm, not one per hold-off.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

import numpy as np

from prefect_ft.detection.alarms import (
    Alarm,
    DetectionResult,
    FailureType,
    Pattern,
    Severity,
    Skipped,
)
from prefect_ft.detection.cusum import robust_scale
from prefect_ft.detection.degradation import degradation_severity
from prefect_ft.detection.exhaustion import time_to_limit
from prefect_ft.detection.resource import exhaustion_severity
from prefect_ft.detection.robust_metric import constant_series, robust_shifts, z_severity
from prefect_ft.detection.thresholds import Thresholds, load_thresholds
from prefect_ft.detection.trend import mann_kendall_z, theil_sen_slope

__all__ = ["MetricKind", "analyse_metric", "detect_metric"]

MetricKind = Literal["latency", "throughput", "resource", "error_rate", "generic"]
_KINDS = ("latency", "throughput", "resource", "error_rate", "generic")
_BASELINE = 1000  # samples
_REFRESH = 10  # samples between baseline refreshes
_DELAY = 10  # a sample joins the baseline this many samples later, unless an alarm came first
_MAX_FIT = 200  # Theil-Sen is O(n^2): fit at most this many points
_HUGE = 1e150  # larger magnitudes are clamped so that no square or sum can overflow


def detect_metric(
    timestamps: np.ndarray,
    values: np.ndarray,
    *,
    kind: MetricKind,
    limit: float | None = None,
) -> list[Alarm]:
    """Alarms on one metric stream; see `analyse_metric` for the skipped-input reasons.

    Args:
        timestamps: sample times, epoch seconds.
        values: sample values.
        kind: "latency" (upward shifts and ramps), "throughput" (drops), "resource" (time to
            `limit`), "error_rate" (rises) or "generic" (two-sided level shifts and spikes).
        limit: the exhaustion level, required for kind "resource".

    Returns:
        Alarms in time order.
    """
    return list(analyse_metric(timestamps, values, kind=kind, limit=limit).alarms)


def _clean(
    ts: np.ndarray, vs: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray, list[Skipped]]:
    skipped: list[Skipped] = []
    ok = np.isfinite(ts) & np.isfinite(vs)
    if (~ok).any():
        skipped.append(Skipped("nan_values", int((~ok).sum()), "samples with NaN or inf dropped"))
    if kind == "latency":
        bad = ok & (vs <= 0)
        if bad.any():
            skipped.append(Skipped("non_positive", int(bad.sum()), "latencies <= 0 dropped"))
        ok &= ~bad
    # a stream cannot go back in time: keep a sample only if it is later than all before it
    prev = np.maximum.accumulate(np.where(ok, ts, -np.inf))
    prev = np.concatenate([[-np.inf], prev[:-1]])
    dup = ok & (ts == prev)
    late = ok & (ts < prev)
    for mask, reason, text in (
        (dup, "duplicate_timestamps", "repeated timestamps dropped"),
        (late, "out_of_order", "samples earlier than a previous one dropped"),
    ):
        if mask.any():
            skipped.append(Skipped(reason, int(mask.sum()), text))
    keep = ok & ~dup & ~late
    vs = vs[keep]
    huge = np.abs(vs) > _HUGE
    if huge.any():
        # squares and sums of such values overflow; clamped, they still stand out as spikes
        skipped.append(
            Skipped("huge_values", int(huge.sum()), f"|value| > {_HUGE:g} clamped to {_HUGE:g}")
        )
        vs = np.clip(vs, -_HUGE, _HUGE)
    return ts[keep], vs, skipped


def analyse_metric(
    timestamps: np.ndarray,
    values: np.ndarray,
    *,
    kind: MetricKind,
    limit: float | None = None,
    thresholds: Thresholds | None = None,
) -> DetectionResult:
    """Like `detect_metric`, also returning why input was skipped (for the caller to log).

    Raises:
        ValueError: `kind` is not one of the five kinds.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
    th = thresholds or load_thresholds()
    ts = np.asarray(timestamps, dtype=float).reshape(-1)
    vs = np.asarray(values, dtype=float).reshape(-1)
    if ts.size != vs.size:
        return DetectionResult(
            (),
            (
                Skipped(
                    "shape_mismatch",
                    max(ts.size, vs.size),
                    "timestamps and values differ in length",
                ),
            ),
        )
    ts, vs, skipped = _clean(ts, vs, kind)
    if ts.size == 0:
        return DetectionResult((), (*skipped, Skipped("empty", 0, "no usable samples")))
    if kind == "resource":
        if limit is None or not math.isfinite(limit):
            return DetectionResult(
                (),
                (
                    *skipped,
                    Skipped("no_limit", int(ts.size), "kind 'resource' needs a finite limit"),
                ),
            )
        alarms = _resource(ts, vs, float(limit), th)
    elif th.metric_model == "robust" and kind != "error_rate":
        alarms = robust_shifts(ts, vs, kind, th, skipped)
    else:
        alarms = _shifts(ts, np.log(vs) if kind == "latency" else vs, kind, th, skipped)
    if ts.size < th.metric_warmup and all(s.reason != "learning" for s in skipped):
        skipped.append(
            Skipped(
                "learning", int(ts.size), f"fewer than {th.metric_warmup} samples: still learning"
            )
        )
    return DetectionResult(tuple(alarms), tuple(skipped))


def _severity(kind: str, x: float, med: float, z: float) -> Severity:
    if kind == "latency":
        return degradation_severity(math.exp(x - med))
    if kind == "throughput" and med > 0:
        return degradation_severity(med / max(x, 1e-12))
    return z_severity(z)


def _shifts(
    ts: np.ndarray, xs: np.ndarray, kind: str, th: Thresholds, skipped: list[Skipped]
) -> list[Alarm]:
    alarms: list[Alarm] = []
    base: deque[float] = deque(maxlen=_BASELINE)
    pending: deque[float] = deque()
    recent: deque[tuple[float, float]] = deque(maxlen=th.mk_window_min)
    med = scale = 0.0
    ready = False
    up = down = 0.0
    zero_up = zero_down = float(ts[0])
    seen = 0
    degenerate = False
    for t, x in zip(ts.tolist(), xs.tolist(), strict=True):
        seen += 1
        recent.append((t, x))
        if ready:
            z = (x - med) / scale
            zc = max(-th.deg_z_clip, min(th.deg_z_clip, z))
            up = max(0.0, up + zc - th.metric_k)
            down = max(0.0, down - zc - th.metric_k)
            zero_up = t if up == 0.0 else zero_up
            zero_down = t if down == 0.0 else zero_down
            fired: tuple[Pattern, float, float, str] | None = None
            if kind in ("latency", "error_rate", "generic") and up > th.metric_h:
                fired = (
                    Pattern.BURST
                    if kind == "error_rate"
                    else Pattern.DEGRADATION
                    if kind == "latency"
                    else Pattern.LEVEL_SHIFT,
                    zero_up,
                    up,
                    "rise",
                )
            elif kind in ("throughput", "generic") and down > th.metric_h:
                fired = (
                    Pattern.DEGRADATION if kind == "throughput" else Pattern.LEVEL_SHIFT,
                    zero_down,
                    down,
                    "drop",
                )
            elif kind == "generic" and abs(z) > th.metric_spike_z:
                alarms.append(_alarm(Pattern.SPIKE, t, t, abs(z), kind, x, med, z, "spike"))
                continue  # a spike is not normal behaviour: keep it out of the baseline
            elif kind == "latency" and seen % 5 == 0 and len(recent) == recent.maxlen:
                arr = np.asarray(recent)
                mk = mann_kendall_z(arr[:, 1])
                if mk >= th.mk_z:
                    slope, icpt = theil_sen_slope(arr[:, 0], arr[:, 1])
                    if slope * 3600.0 >= math.log(th.ts_min_ratio_per_hour):
                        onset = min(max((med - icpt) / slope, float(arr[0, 0])), t)
                        fired = (Pattern.DEGRADATION, onset, mk, "trend")
            if fired is not None:
                pattern, onset, score, how = fired
                alarms.append(_alarm(pattern, onset, t, score, kind, x, med, z, how))
                # relearn: the data after a lasting shift is the new normal
                base.clear()
                pending.clear()
                recent.clear()
                ready = False
                up = down = 0.0
                continue
        pending.append(x)
        if len(pending) > (_DELAY if ready else 0):
            base.append(pending.popleft())
        if len(base) >= th.metric_warmup and (not ready or seen % _REFRESH == 0):
            arr = np.fromiter(base, float)
            med = float(np.median(arr))
            dev = np.abs(arr - med)
            mad, mean_dev = float(np.median(dev)), float(dev.mean())
            scale = robust_scale(mad, mean_dev, med)
            degenerate = mad == 0.0 and mean_dev == 0.0
            if not ready:
                ready = True
                zero_up = zero_down = t
    if degenerate:
        skipped.append(constant_series(int(ts.size)))
    return alarms


def _alarm(
    pattern: Pattern,
    onset: float,
    at: float,
    score: float,
    kind: str,
    x: float,
    med: float,
    z: float,
    how: str,
) -> Alarm:
    ftype = (
        FailureType.PERFORMANCE_DEGRADATION
        if kind in ("latency", "throughput")
        else FailureType.PROCESSING_ERROR
    )
    shown_x, shown_med = (math.exp(x), math.exp(med)) if kind == "latency" else (x, med)
    return Alarm(
        pattern=pattern,
        components=(),
        onset=float(onset),
        at=float(at),
        severity=_severity(kind, x, med, z),
        failure_type=ftype,
        score=float(score),
        evidence=(("value", shown_x), ("baseline", shown_med), ("z", z)),
        explanation=f"{kind} {how}: {shown_x:.4g} against a learnt baseline of {shown_med:.4g}",
    )


def _resource(ts: np.ndarray, vs: np.ndarray, limit: float, th: Thresholds) -> list[Alarm]:
    alarms: list[Alarm] = []
    hold_until = -math.inf
    lo = 0
    for i in range(ts.size):
        t = float(ts[i])
        while ts[lo] < t - th.exh_window_s:
            lo += 1
        n = i + 1 - lo
        if n < 10:
            continue
        pick = np.linspace(lo, i, min(n, _MAX_FIT)).round().astype(np.int64)
        tw, xw = ts[pick], vs[pick]
        tc = tw - tw.mean()
        denom = float((tc * tc).sum())
        slope_ls = float((tc * (xw - xw.mean())).sum() / denom) if denom > 0 else 0.0
        if slope_ls <= 0 or (limit - xw[-1]) / slope_ls > 3 * th.exh_horizon_s:
            continue
        est = time_to_limit(tw, xw, limit, t, th.exh_alpha)
        if est is None:
            continue
        rise = est.slope * (tw[-1] - tw[0])
        if not (
            est.slope_lo > 0
            and est.tte_lo_s < th.exh_horizon_s
            and rise > th.exh_min_ratio * max(est.noise, 1e-9 * abs(limit))
        ):
            continue
        held = t < hold_until
        hold_until = t + th.holdoff_s
        if held:
            continue
        alarms.append(
            Alarm(
                pattern=Pattern.EXHAUSTION,
                components=(),
                onset=float(tw[0]),
                at=t,
                severity=exhaustion_severity(est.tte_s),
                failure_type=FailureType.RESOURCE_EXHAUSTION,
                score=est.tte_lo_s,
                evidence=(
                    ("tte_s", est.tte_s),
                    ("tte_lo_s", est.tte_lo_s),
                    ("slope_per_s", est.slope),
                    ("level", est.level),
                    ("limit", limit),
                ),
                explanation=(
                    f"resource at {est.level:.4g} rising {est.slope * 60:.3g}/min; limit "
                    f"{limit:.4g} in {est.tte_s / 60:.0f} min (pessimistic "
                    f"{est.tte_lo_s / 60:.0f} min)"
                ),
            )
        )
    return alarms
