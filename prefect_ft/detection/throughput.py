"""Throughput drops: successful task completions per minute, per component.

A stage that stops completing work (a stalled worker, a dependency that fails every call) shows
as fewer completions per minute than its load predicts. Counts are put on the Anscombe scale
2 sqrt(n + 3/8), where Poisson counts have unit variance (Anscombe 1948), and judged against
the same seasonal, robust baseline as the degradation detector (`minute_baseline.py`: 24-h
median, last half hour or the same quarter-hour of past days, whichever predicts best), so the
daily load cycle of arrivals is not a drop. A one-sided lower CUSUM on the robust z (Page 1954;
`deg_k`, `deg_h`, as for latency) decides, and an alarm also needs a practical effect: the minute's
completions below `_MIN_RATIO` of the baseline's. After an alarm the level is relearnt, so a
lasting drop alarms once.
"""

from __future__ import annotations

import math

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern
from prefect_ft.detection.degradation import degradation_severity
from prefect_ft.detection.minute_tracker import MinuteTracker
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["ThroughputTracker"]

_MIN_RATIO = 0.5  # completions must fall below half the baseline: a daily swing is +-30 %


def _counts(y: float) -> float:
    """Inverse of the Anscombe transform (completions per minute)."""
    return max(0.0, (y / 2.0) ** 2 - 0.375)


class ThroughputTracker(MinuteTracker):
    """Completion-rate drop detector for one component, fed one closed minute at a time."""

    __slots__ = ()

    def __init__(self, name: str, th: Thresholds) -> None:
        super().__init__(name, th, min_scale=1.0)

    def close_minute(self, end: float, completions: int) -> Alarm | None:
        """Close the minute ending at `end` in which `completions` tasks succeeded."""
        y = 2.0 * math.sqrt(max(completions, 0) + 0.375)
        preds = self.base.predictions(end)
        self._advance(end, y, preds)
        i = self.base.pick(preds, up=False)
        if self.scale <= 0.0 or i is None:
            return None
        p = preds[i]
        assert p is not None  # pick names an available prediction
        z = max((y - p) / self.scale, -self.th.deg_z_clip)
        if not self.cusum.step(-z, end - 60.0):
            return None
        ratio = _counts(y) / max(_counts(p), 1e-9)
        if ratio >= _MIN_RATIO:
            return None  # significant but small: keep watching
        onset, score = self.cusum.zero_at, self.cusum.s
        if not self._fire(end, onset):
            return None
        return Alarm(
            pattern=Pattern.DEGRADATION,
            components=(self.name,),
            onset=onset,
            at=end,
            severity=degradation_severity(1.0 / max(ratio, 1e-9)),
            failure_type=FailureType.PERFORMANCE_DEGRADATION,
            score=float(score),
            evidence=(
                ("throughput_ratio", ratio),
                ("completions_per_min", float(completions)),
                ("baseline_per_min", _counts(p)),
            ),
            explanation=(
                f"{self.name}: {completions} completions a minute, {ratio:.0%} of its "
                f"{self.base.name} baseline of {_counts(p):.3g}"
            ),
        )
