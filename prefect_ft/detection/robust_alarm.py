"""The alarms of the real-series detector (`robust_metric`): severity, evidence and wording.

Split from `robust_metric.py` along the seam between deciding (the per-sample rules there) and
reporting (here): what an alarm says depends only on the kind, the value, the learnt prediction
and its transform, never on the rules' state.
"""

from __future__ import annotations

import math

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern, Severity, Skipped
from prefect_ft.detection.degradation import degradation_severity

__all__ = ["constant_series", "inverse_transform", "make_alarm", "z_severity"]


def z_severity(z: float) -> Severity:
    """Severity of a spike or shift by its robust z (5, 10 and 20 scales: MEDIUM, HIGH, CRITICAL)."""
    a = abs(z)
    if a >= 20:
        return Severity.CRITICAL
    if a >= 10:
        return Severity.HIGH
    return Severity.MEDIUM if a >= 5 else Severity.LOW


def constant_series(n: int) -> Skipped:
    """The reason given when the learnt baseline has no spread (v1 and v2 detectors)."""
    return Skipped(
        "constant_series", n, "the learnt baseline has no spread; only a change can alarm"
    )


def inverse_transform(tf: str, c: float, y: float) -> float:
    if tf == "anscombe":
        return max(0.0, (y / 2.0) ** 2 - c)
    if tf == "log":
        return math.exp(min(y, 700.0)) - c
    return y


def make_alarm(
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
    base = inverse_transform(tf, c, pred)
    if kind == "latency" or (kind == "throughput" and z < 0):
        pattern = Pattern.DEGRADATION
        ftype = FailureType.PERFORMANCE_DEGRADATION
        ratio = x / base if kind == "latency" else base / max(x, 1e-12)
        severity = degradation_severity(ratio if base > 0 else 1.0)
    else:
        pattern = Pattern.SPIKE if how.endswith("spike") else Pattern.LEVEL_SHIFT
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
