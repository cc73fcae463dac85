"""Input batches: task runs and resource samples as numpy arrays, plus their validation.

A history adapter (outside the pure layer) converts Prefect task runs into a `TaskRunBatch`;
detectors never see Prefect models. Bad rows are dropped with a `Skipped` reason, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from prefect_ft.detection.alarms import Skipped

__all__ = ["ResourceBatch", "RunningBatch", "TaskRunBatch"]


def _arr(x: object, dtype: type | np.dtype) -> np.ndarray:
    return np.asarray(x, dtype=dtype).reshape(-1)


@dataclass(frozen=True, slots=True, eq=False)
class TaskRunBatch:
    """Finished task runs (one row per attempt).

    Attributes:
        components: names for the values of `component`.
        start: start times, epoch seconds.
        end: end times, epoch seconds (rows are processed in end-time order).
        failed: True for FAILED or CRASHED runs.
        failure_type: `FailureType.code` per row, -1 when the run did not fail.
        component: index into `components` per row.
        duration: run time in seconds; `end - start` when omitted.
    """

    components: tuple[str, ...]
    start: np.ndarray
    end: np.ndarray
    failed: np.ndarray
    failure_type: np.ndarray
    component: np.ndarray
    duration: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _arr(self.start, np.float64))
        object.__setattr__(self, "end", _arr(self.end, np.float64))
        object.__setattr__(self, "failed", _arr(self.failed, bool))
        object.__setattr__(self, "failure_type", _arr(self.failure_type, np.int64))
        object.__setattr__(self, "component", _arr(self.component, np.int64))
        dur = _arr(self.duration, np.float64)
        if dur.size == 0 and self.end.size:
            dur = self.end - self.start
        object.__setattr__(self, "duration", dur)
        object.__setattr__(self, "components", tuple(self.components))

    def __len__(self) -> int:
        return int(self.end.size)

    def between(self, lo: float, hi: float) -> TaskRunBatch:
        """The rows that ended in `[lo, hi)`, e.g. to feed a history in slices."""
        m = (self.end >= lo) & (self.end < hi)
        return TaskRunBatch(
            self.components,
            self.start[m],
            self.end[m],
            self.failed[m],
            self.failure_type[m],
            self.component[m],
            self.duration[m],
        )

    @classmethod
    def empty(cls, components: tuple[str, ...] = ()) -> TaskRunBatch:
        """A batch with no rows."""
        z = np.empty(0)
        return cls(components, z, z, z, z, z, z)

    def clean(
        self, index: Mapping[str, int], not_before: float
    ) -> tuple[dict[str, np.ndarray], list[Skipped]]:
        """Rows usable by the engine, sorted by end time, with reasons for the rest.

        Args:
            index: engine component name to engine index.
            not_before: rows ending before this were already processed; later ones are late.

        Returns:
            Arrays `end, duration, failed, code, comp` (engine indices) and skip reasons.
        """
        skipped: list[Skipped] = []
        n = len(self)
        sizes = {
            a.size
            for a in (self.start, self.failed, self.failure_type, self.component, self.duration)
        }
        if sizes != {n}:
            return _empty_rows(), [Skipped("shape_mismatch", n, "batch arrays differ in length")]
        lut = np.array([index.get(c, -1) for c in self.components] + [-1], dtype=np.int64)
        raw = self.component
        comp = lut[np.where((raw >= 0) & (raw < len(self.components)), raw, len(self.components))]
        keep = np.ones(n, dtype=bool)
        for mask, reason, text in (
            (comp < 0, "unknown_component", "rows name a component the engine does not know"),
            (~np.isfinite(self.end), "nan_values", "rows without a finite end time"),
            (self.end < not_before, "late_rows", "rows end before the engine's watermark"),
        ):
            bad = mask & keep
            if bad.any():
                skipped.append(Skipped(reason, int(bad.sum()), text))
                keep &= ~bad
        idx = np.nonzero(keep)[0]
        order = idx[np.lexsort((self.start[idx], comp[idx], self.end[idx]))]
        if order.size > 1:
            e, s, c = self.end[order], self.start[order], comp[order]
            dup = np.zeros(order.size, dtype=bool)
            dup[1:] = (e[1:] == e[:-1]) & (c[1:] == c[:-1]) & (s[1:] == s[:-1])
            if dup.any():
                skipped.append(
                    Skipped(
                        "duplicate_rows",
                        int(dup.sum()),
                        "rows repeat another row's component, start and end",
                    )
                )
                order = order[~dup]
        dur = self.duration[order]
        failed = self.failed[order]
        code = np.where(failed, self.failure_type[order], -1)
        return {
            "end": self.end[order],
            "duration": dur,
            "failed": failed,
            "code": code,
            "comp": comp[order],
        }, skipped


@dataclass(frozen=True, slots=True, eq=False)
class RunningBatch:
    """Task runs in flight when the history was read: started (RUNNING), not ended.

    Attributes:
        components: names for the values of `component`.
        start: start times of the runs' current attempts, epoch seconds.
        component: index into `components` per run.
    """

    components: tuple[str, ...]
    start: np.ndarray
    component: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _arr(self.start, np.float64))
        object.__setattr__(self, "component", _arr(self.component, np.int64))
        object.__setattr__(self, "components", tuple(self.components))
        if self.start.size != self.component.size:
            raise ValueError("start and component differ in length")

    def __len__(self) -> int:
        return int(self.start.size)

    def oldest(self, index: Mapping[str, int]) -> dict[int, float]:
        """The earliest start per engine component index (runs of other components and
        without a finite start are left out)."""
        out: dict[int, float] = {}
        for raw, start in zip(self.component.tolist(), self.start.tolist(), strict=True):
            name = self.components[raw] if 0 <= raw < len(self.components) else None
            i = index.get(name) if name is not None else None
            if i is not None and math.isfinite(start):
                out[i] = min(out.get(i, math.inf), start)
        return out


def _empty_rows() -> dict[str, np.ndarray]:
    z = np.empty(0)
    return {
        "end": z,
        "duration": z,
        "failed": z.astype(bool),
        "code": z.astype(np.int64),
        "comp": z.astype(np.int64),
    }


@dataclass(frozen=True, slots=True, eq=False)
class ResourceBatch:
    """Resource samples per component.

    Attributes:
        components: names for the values of `component`.
        ts: sample times, epoch seconds.
        component: index into `components`.
        memory_mb: resident memory.
        memory_limit_mb: the memory limit at that time.
        cpu_pct: CPU utilisation in percent (limit 100); NaN when not sampled.
    """

    components: tuple[str, ...]
    ts: np.ndarray
    component: np.ndarray
    memory_mb: np.ndarray
    memory_limit_mb: np.ndarray
    cpu_pct: np.ndarray

    def __post_init__(self) -> None:
        for name in ("ts", "memory_mb", "memory_limit_mb", "cpu_pct"):
            object.__setattr__(self, name, _arr(getattr(self, name), np.float64))
        object.__setattr__(self, "component", _arr(self.component, np.int64))
        object.__setattr__(self, "components", tuple(self.components))

    def __len__(self) -> int:
        return int(self.ts.size)

    def between(self, lo: float, hi: float) -> ResourceBatch:
        """The samples taken in `[lo, hi)`."""
        m = (self.ts >= lo) & (self.ts < hi)
        return ResourceBatch(
            self.components,
            self.ts[m],
            self.component[m],
            self.memory_mb[m],
            self.memory_limit_mb[m],
            self.cpu_pct[m],
        )

    def clean(
        self, index: Mapping[str, int], not_before: float
    ) -> tuple[dict[str, np.ndarray], list[Skipped]]:
        """Samples usable by the engine, sorted by time, with reasons for the rest."""
        n = len(self)
        sizes = {
            a.size for a in (self.component, self.memory_mb, self.memory_limit_mb, self.cpu_pct)
        }
        if sizes != {n}:
            z = np.empty(0)
            return (
                {"ts": z, "comp": z.astype(np.int64), "mem": z, "limit": z, "cpu": z},
                [Skipped("shape_mismatch", n, "resource arrays differ in length")],
            )
        lut = np.array([index.get(c, -1) for c in self.components] + [-1], dtype=np.int64)
        raw = self.component
        comp = lut[np.where((raw >= 0) & (raw < len(self.components)), raw, len(self.components))]
        skipped: list[Skipped] = []
        keep = np.ones(n, dtype=bool)
        for mask, reason, text in (
            (comp < 0, "unknown_component", "samples name a component the engine does not know"),
            (~np.isfinite(self.ts), "nan_values", "samples without a finite time"),
            (self.ts < not_before, "late_samples", "samples before the engine's watermark"),
        ):
            bad = mask & keep
            if bad.any():
                skipped.append(Skipped(reason, int(bad.sum()), text))
                keep &= ~bad
        idx = np.nonzero(keep)[0]
        order = idx[np.lexsort((comp[idx], self.ts[idx]))]
        return {
            "ts": self.ts[order],
            "comp": comp[order],
            "mem": self.memory_mb[order],
            "limit": self.memory_limit_mb[order],
            "cpu": self.cpu_pct[order],
        }, skipped
