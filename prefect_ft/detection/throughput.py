"""Throughput drops: successful task completions per minute, per component.

A stage that stops completing work (a stalled worker, a dependency that fails every call) shows
as fewer completions per minute than its load predicts. Counts are put on the Anscombe scale
2 sqrt(n + 3/8), where Poisson counts have unit variance (Anscombe 1948), and judged against
the same seasonal, robust baseline as the degradation detector (`minute_baseline.py`: 24-h
median, last half hour or the same quarter-hour of past days). A one-sided lower CUSUM on the
robust z (Page 1954; `deg_k`, `deg_h`, as for latency) decides, and an alarm also needs a
practical effect that holds: the completions of the last `RUN_MIN` minutes below `MIN_RATIO` of
the expected ones. After an alarm the level is relearnt, so a lasting drop alarms once.

**The expected rate is the lowest of the predictions**, not the one that predicted best. Unlike
latency, completions are not a property of the stage alone: they follow the demand, and a stage
with a backlog completes at its capacity, above the demand, until the queue empties. After a
busy hour (or a flash crowd) the half-hour median has learnt the drain rate, and the return to
the arrival rate read as a drop to half: 27 false alarms on the daily-load benchmark, all but one
of them a queue emptying (2026-12-02). A drop is therefore a drop against every predictor: below
the 24-h level (the long-run demand, which a drain does not move), below the recent half hour
(so a daily trough, which the 24-h level sees as low, is not one) and below the same phase of
past days. This is the rule `MinuteBaseline.pick` applies to every detector while the errors are
still unknown, here kept for good: a stalled stage falls below all of them at once.

**A drop is the stage's fault only when its input held (flow conservation).** Completions also
fall when work stops arriving: the upstream stalls, a batch window closes, a history ends (the
one false alarm on the targeted set, 2026-12-02: the first stage at the end of a history). So the
caller may pass the stage's input per minute, the work it was handed: its upstream stages'
completions, or at least its own attempts, failed ones included. An alarm then also needs the
run's completions below `MIN_RATIO` of its input: a stage that completes what it receives is
not failing, whatever the baseline says. A stage that hangs without ending any attempt while
its input is unknown (a first stage) reads here as "nothing arrived": its runs in flight tell
the two apart, and `hang.HangTracker` judges them (a run in flight past twice the stage's
learnt duration limit while it ends nothing it would have ended; found in 1-2 minutes on the
synthetic pipeline, `benchmarks/hangs.py`, 2026-12-03).
"""

from __future__ import annotations

import math
from collections import deque

from prefect_ft.detection.alarms import Alarm, FailureType, Pattern
from prefect_ft.detection.degradation import degradation_severity
from prefect_ft.detection.minute_baseline import NAMES
from prefect_ft.detection.minute_tracker import MinuteTracker
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["MIN_RATIO", "RUN_MIN", "ThroughputTracker"]

MIN_RATIO = 0.5  # completions must fall below half the expected: a daily swing is +-30 %
# minutes the drop to half must hold (their completions summed against the expected): one slow
# minute after a significant but small fall read as a drop on its own; at ~45 a minute, three
# minutes below half are ~4 Poisson sigmas out, and a stall still alarms within 3-5 minutes
RUN_MIN = 3


def _counts(y: float) -> float:
    """Inverse of the Anscombe transform (completions per minute)."""
    return max(0.0, (y / 2.0) ** 2 - 0.375)


def _lowest(preds: list[float | None]) -> int | None:
    """Index of the lowest available prediction; None while the 24-h level cannot predict."""
    if preds[0] is None:
        return None
    return min((m for m, p in enumerate(preds) if p is not None), key=lambda m: preds[m])  # type: ignore[arg-type,return-value]


class ThroughputTracker(MinuteTracker):
    """Completion-rate drop detector for one component, fed one closed minute at a time."""

    __slots__ = ("fed", "run")

    def __init__(self, name: str, th: Thresholds) -> None:
        super().__init__(name, th, min_scale=1.0)
        self.run: deque[list[float]] = deque(maxlen=RUN_MIN)  # [completions, expected]
        # the input of the run's minutes, -1 where unknown (a separate slot: states saved
        # before it existed load with it empty)
        self.fed: deque[float] = deque(maxlen=RUN_MIN)

    def close_minute(self, end: float, completions: int, inputs: int | None = None) -> Alarm | None:
        """Close the minute ending at `end` in which `completions` tasks succeeded.

        Args:
            end: end of the minute, epoch seconds.
            completions: tasks of this stage that succeeded in the minute.
            inputs: work handed to the stage in the minute (see the module docstring); None
                when unknown, and then a drop against the baseline alone alarms.
        """
        y = 2.0 * math.sqrt(max(completions, 0) + 0.375)
        preds = self.base.predictions(end)
        self._advance(end, y, preds)
        i = _lowest(preds)
        if self.scale <= 0.0 or i is None:
            self.run.clear()  # a run is consecutive minutes with an expectation
            self.fed.clear()
            return None
        p = preds[i]
        assert p is not None  # _lowest names an available prediction
        self.run.append([float(max(completions, 0)), _counts(p)])
        self.fed.append(-1.0 if inputs is None else float(max(inputs, 0)))
        # each predictor's own residual scale (its errors, lag included); the chosen one's
        # until it has enough residuals
        z = max((y - p) / (self.base.scales[i] or self.scale), -self.th.deg_z_clip)
        if not self.cusum.step(-z, end - 60.0):
            return None
        if len(self.run) < RUN_MIN:
            return None
        done = sum(c for c, _ in self.run)
        ratio = done / max(sum(e for _, e in self.run), 1e-9)
        if ratio >= MIN_RATIO:
            return None  # significant but small, or not yet lasting: keep watching
        known = len(self.fed) == len(self.run) and min(self.fed) >= 0.0
        if known and done >= MIN_RATIO * sum(self.fed):
            return None  # it completes what it is handed: its input dropped, not the stage
        onset, score = self.cusum.zero_at, self.cusum.s
        if not self._fire(end, onset):
            return None
        fed = sum(self.fed) / len(self.fed)
        self.run.clear()
        self.fed.clear()
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
                *((("input_per_min", fed),) if known else ()),
            ),
            explanation=(
                f"{self.name}: {completions} completions a minute, {ratio:.0%} of the "
                f"{_counts(p):.3g} expected over the last {RUN_MIN} minutes ({NAMES[i]} baseline)"
            ),
        )
