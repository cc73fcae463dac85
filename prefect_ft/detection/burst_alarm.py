"""What a burst alarm says: its severity, failure type, evidence and explanation.

The bank of CUSUMs in `burst.py` decides when a component's failure rate has risen; this module
reads the episode the alarming chart holds (tasks and failures since its onset, the baseline
rate p0) into an `Alarm`. The exact binomial test of the episode against p0 is evidence only,
never the trigger (repeated looks would inflate false alarms). `burst_severity` is also how the
synthetic generator labels its burst episodes (`_episodes.py`), so the two cannot drift apart.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from prefect_ft.detection.alarms import FAILURE_TYPES, Alarm, FailureType, Pattern, Severity

__all__ = ["burst_alarm", "burst_severity", "dominant_type"]


def burst_severity(ratio: float, rate: float) -> Severity:
    """Severity from the failure-rate ratio over baseline (the geometric midpoints of 3/5/10/30x)."""
    if ratio >= 17.0 or rate >= 0.5:
        return Severity.CRITICAL
    if ratio >= 7.0:
        return Severity.HIGH
    if ratio >= 3.9:
        return Severity.MEDIUM
    return Severity.LOW


def dominant_type(types: list[int]) -> int:
    """The code of the most frequent failure type among per-code counts (a tie: the lower code)."""
    return int(np.argmax(types)) if any(types) else FailureType.PROCESSING_ERROR.code


def burst_alarm(
    name: str,
    t: float,
    onset: float,
    n: int,
    k: int,
    p0: float,
    s: float,
    code: int,
    h: float,
    rise: float,
) -> Alarm:
    """The alarm of a chart that crossed its interval `h` at `t`.

    Args:
        name: the component.
        t: when the chart crossed.
        onset: the chart's last zero, the onset estimate.
        n: tasks since the onset.
        k: failures among them.
        p0: the baseline failure rate the chart tests against.
        s: the chart's statistic.
        code: the code of the episode's dominant failure type.
        h: the chart's decision interval.
        rise: the chart's p1 / p0 (its `burst_m`).
    """
    rate = k / n if n else 0.0
    ratio = rate / p0
    ftype = FAILURE_TYPES[code]
    pval = float(stats.binomtest(k, n, p0, alternative="greater").pvalue) if n else 1.0
    return Alarm(
        pattern=Pattern.BURST,
        components=(name,),
        onset=onset,
        at=t,
        severity=burst_severity(ratio, rate),
        failure_type=ftype,
        score=s,
        evidence=(
            ("failed", float(k)),
            ("tasks", float(n)),
            ("rate", rate),
            ("baseline_rate", p0),
            ("ratio", ratio),
            ("p_value", pval),
            ("h", h),
            ("p1_ratio", rise),
        ),
        explanation=(
            f"{name}: {k} of {n} tasks failed since onset ({rate:.1%}, "
            f"{ratio:.1f}x the baseline {p0:.2%}), mostly {ftype}"
        ),
    )
