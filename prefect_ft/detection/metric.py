"""`detect_metric`: the stable entry point for one metric stream (latency, throughput, ...).

It learns the stream's normal behaviour as it goes (no labels, no look-ahead): a robust baseline
(median and 1.4826 * MAD of accepted samples) feeds a CUSUM on robust z (Page 1954), so running
it on a prefix returns exactly the full run's alarms up to the prefix's end. After an alarm the
baseline is relearnt from the new data, so a lasting shift raises one alarm, not one per hold-off.
That CUSUM sits in `metric_cusum.py`; with the robust thresholds (`metric_model` "robust") the
shifts come from `robust_metric.py`, and a resource stream's time to its limit is read here.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from prefect_ft.detection.alarms import Alarm, DetectionResult, FailureType, Pattern, Skipped
from prefect_ft.detection.exhaustion import time_to_limit
from prefect_ft.detection.metric_cusum import cusum_shifts
from prefect_ft.detection.resource import exhaustion_severity
from prefect_ft.detection.robust_metric import robust_shifts
from prefect_ft.detection.thresholds import Thresholds, load_thresholds

__all__ = ["MetricKind", "analyse_metric", "detect_metric"]

MetricKind = Literal["latency", "throughput", "resource", "error_rate", "generic"]
_KINDS = ("latency", "throughput", "resource", "error_rate", "generic")
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
        alarms = cusum_shifts(ts, np.log(vs) if kind == "latency" else vs, kind, th, skipped)
    if ts.size < th.metric_warmup and all(s.reason != "learning" for s in skipped):
        skipped.append(
            Skipped(
                "learning", int(ts.size), f"fewer than {th.metric_warmup} samples: still learning"
            )
        )
    return DetectionResult(tuple(alarms), tuple(skipped))


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
