"""`MetricStream`: `detect_metric` one sample at a time, for callers that poll a metric.

It cleans each sample by the batch rules (`metric._clean`: NaN and inf dropped, latencies <= 0
dropped, a timestamp not later than the last one dropped, |value| > 1e150 clamped) and feeds the
v2 detector's own per-sample body (`robust_metric.RobustStream`), so the alarms equal
`detect_metric`'s on the same samples, and a prefix gives the full run's alarms up to its end.
An update is O(1) amortised plus a scale refresh every 50 samples (`baselines.py`).
"""

from __future__ import annotations

import math
from collections import Counter

from prefect_ft.detection.alarms import Alarm, Skipped
from prefect_ft.detection.metric import _HUGE, _KINDS
from prefect_ft.detection.robust_metric import RobustStream, constant_series
from prefect_ft.detection.thresholds import Thresholds, load_thresholds

__all__ = ["MetricStream"]

_STREAM_KINDS = ("latency", "throughput", "generic")
_TEXT = {
    "nan_values": "samples with NaN or inf dropped",
    "non_positive": "latencies <= 0 dropped",
    "duplicate_timestamps": "repeated timestamps dropped",
    "out_of_order": "samples earlier than a previous one dropped",
    "huge_values": f"|value| > {_HUGE:g} clamped to {_HUGE:g}",
}


class MetricStream:
    """Incremental detection on one metric stream.

    Example:
        ```python
        stream = MetricStream("latency")
        for t, v in samples:
            for alarm in stream.update(t, v):
                page(alarm)
        ```

    Raises:
        ValueError: `kind` is not latency, throughput or generic, or the thresholds are not
            of the robust (v2) model.
    """

    def __init__(self, kind: str, *, thresholds: Thresholds | None = None) -> None:
        th = thresholds or load_thresholds()
        if kind not in _STREAM_KINDS or th.metric_model != "robust":
            raise ValueError(
                f"kind must be one of {_STREAM_KINDS} with robust thresholds, not {kind!r} "
                f"(all kinds {_KINDS}: use detect_metric)"
            )
        self.kind = kind
        self._stream = RobustStream(kind, th)
        self._last = -math.inf
        self._dropped: Counter[str] = Counter()

    def update(self, timestamp: float, value: float) -> list[Alarm]:
        """Feed one sample; return the alarms it raises (at most one)."""
        t, x = float(timestamp), float(value)
        if not (math.isfinite(t) and math.isfinite(x)):
            self._dropped["nan_values"] += 1
            return []
        if self.kind == "latency" and x <= 0:
            self._dropped["non_positive"] += 1
            return []
        if t <= self._last:
            self._dropped["duplicate_timestamps" if t == self._last else "out_of_order"] += 1
            return []
        self._last = t
        if abs(x) > _HUGE:
            self._dropped["huge_values"] += 1
            x = math.copysign(_HUGE, x)
        alarm = self._stream.update(t, x)
        return [] if alarm is None else [alarm]

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        """Why samples were dropped or clamped so far, and whether the stream is still learning."""
        out = [Skipped(k, n, _TEXT[k]) for k, n in sorted(self._dropped.items())]
        if self._stream.learning:
            out.append(Skipped("learning", self._stream.count, "still learning what is normal"))
        if self._stream.degenerate:
            out.append(constant_series(self._stream.count))
        return tuple(out)
