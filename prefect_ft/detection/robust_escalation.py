"""The escalation rule of the real-series detector (`robust_metric`): an alarm inside a hold-off.

Split from `robust_metric.py`: the hold-off keeps one episode to one alarm, and this rule (v5,
`rm_escalate`; off unless > 0) is its only exception. A small precursor (a rise a few samples
before an outage) would otherwise swallow the outage itself: a |z| of `rm_escalate` times the last
alarm's, and above `rm_spike_z`, is reported and restarts the hold-off.
"""

from __future__ import annotations

from prefect_ft.detection.alarms import Alarm
from prefect_ft.detection.baselines import RealSeriesModel
from prefect_ft.detection.robust_alarm import make_alarm
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["escalation"]


def escalation(
    th: Thresholds,
    model: RealSeriesModel | None,
    last: tuple[float, tuple[float, float]],
    sides: tuple[bool, bool],
    sample: tuple[float, float, float, float | None],
    meta: tuple[str, str, float],
) -> tuple[Alarm, float, tuple[float, float]] | None:
    """The escalation alarm at `sample` (t, x, y, p), if any, with its z and reference.

    `last` is the last alarm's z and (prediction, scale); `sides` says whether rises and drops
    may alarm; `meta` is the kind, transform and offset. The z is measured by the alarm's own
    scale, and by its prediction unless a seasonal one follows the time of day: the flat level
    relearnt after the alarm knows too little yet.
    """
    t, x, y, p = sample
    alarm_z, (ref, scale) = last
    up_ok, down_ok = sides
    if th.rm_escalate <= 0 or model is None or scale <= 0.0:
        return None
    if p is not None and model.choice > 0:
        ref = p
    z = (y - ref) / scale
    # the same episode growing: the direction of the last alarm, far beyond it
    if z * alarm_z <= 0.0 or not ((z > 0 and up_ok) or (z < 0 and down_ok)):
        return None
    if abs(z) <= max(th.rm_spike_z, th.rm_escalate * abs(alarm_z)):
        return None
    kind, tf, c = meta
    alarm = make_alarm("escalation", t, t, abs(z), kind, x, ref, z, tf, c, model.model_name)
    return alarm, z, (ref, scale)
