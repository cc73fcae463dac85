"""The CUSUM path of `detect_metric`: robust z of each sample against a learnt baseline.

A robust baseline (median and 1.4826 * MAD of accepted samples, the last 1000) feeds a pair of
CUSUMs on clipped robust z (Page 1954); kind "generic" also flags single spikes, and latency runs
a Mann-Kendall test with a Theil-Sen slope (Mann 1945; Kendall 1975; Theil 1950; Sen 1968) for
slow ramps. A sample joins the baseline 10 samples late unless an alarm came first, and after an
alarm the baseline is relearnt. It serves `analyse_metric` for kind "error_rate", and for every
kind when the thresholds' `metric_model` is not "robust"; kept apart from `metric.py`, which
cleans the input and picks the path.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity, Skipped
from prefect_ft.detection.cusum import robust_scale
from prefect_ft.detection.degradation import degradation_severity
from prefect_ft.detection.robust_metric import constant_series, z_severity
from prefect_ft.detection.thresholds import Thresholds
from prefect_ft.detection.trend import mann_kendall_z, theil_sen_slope

__all__ = ["cusum_shifts"]

_BASELINE = 1000  # samples
_REFRESH = 10  # samples between baseline refreshes
_DELAY = 10  # a sample joins the baseline this many samples later, unless an alarm came first


def _severity(kind: str, x: float, med: float, z: float) -> Severity:
    if kind == "latency":
        return degradation_severity(math.exp(x - med))
    if kind == "throughput" and med > 0:
        return degradation_severity(med / max(x, 1e-12))
    return z_severity(z)


def cusum_shifts(
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
