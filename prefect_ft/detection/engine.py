"""The incremental detection engine: task-run and resource batches in, alarms out.

Time advances in closed minutes aligned to epoch minutes. Per-task detectors (error bursts) see
each row as soon as it arrives; per-minute detectors (degradation, throughput, exhaustion, cyclic,
cascade) run when a minute closes, i.e. once the input is complete up to its end (`until`). Every
decision
uses only data up to its time, so feeding a history in one batch or in many gives the same
alarms, and `state()` / `from_state()` let a flow resume exactly where its last run stopped.
The settings sit in `engine_config.py`, the snapshot's layout in `engine_state.py` and the
column helpers in `_columns.py`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from prefect_ft.detection._columns import (
    RES_KEYS,
    ROW_KEYS,
    concat_columns,
    empty_columns,
    slice_columns,
    suffix_min_start,
)
from prefect_ft.detection._split import FailureTimes, Split, by_component
from prefect_ft.detection.alarms import Alarm, DetectionResult, Skipped
from prefect_ft.detection.batch import ResourceBatch, RunningBatch, TaskRunBatch
from prefect_ft.detection.budget_watch import BudgetWatch
from prefect_ft.detection.burst import BurstTracker
from prefect_ft.detection.cascade import ancestors
from prefect_ft.detection.cyclic import CyclicTracker
from prefect_ft.detection.degradation import DegradationTracker, common_mode, minute_median
from prefect_ft.detection.engine_config import PIPELINE, EngineConfig
from prefect_ft.detection.engine_state import STATE_VERSION, dump_state, load_state
from prefect_ft.detection.hang import HangTracker
from prefect_ft.detection.propagation import CascadeTracker
from prefect_ft.detection.resource import ResourceTracker
from prefect_ft.detection.throughput import ThroughputTracker

__all__ = ["PIPELINE", "DetectionEngine", "EngineConfig"]


class DetectionEngine:
    """Runs every detector over task-run and resource batches, incrementally.

    Example:
        ```python
        engine = DetectionEngine(EngineConfig())
        result = engine.update(batch, resources, until=now)
        saved = engine.state()  # JSON-ready; DetectionEngine.from_state(config, saved) resumes
        ```
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        th = self.config.thresholds
        names = self.config.components
        self._index = {c: i for i, c in enumerate(names)}
        self._parents: dict[int, list[int]] = {i: [] for i in range(len(names))}
        for up, down in self.config.edges:
            self._parents[self._index[down]].append(self._index[up])
        self._related = {i: self._ancestry(i) for i in range(len(names))}
        cfg = self.config
        self._burst = [
            BurstTracker(n, th, cfg.run_baseline_min_tasks, cfg.burst_holdoff_by_type)
            for n in names
        ]
        self._deg = [DegradationTracker(n, th) for n in names]
        self._tput = [ThroughputTracker(n, th) for n in names]
        self._hang = [HangTracker(n, th) for n in names]
        self._running = [math.inf] * len(names)  # oldest start in flight at `until`, per comp
        self._first: list[np.ndarray] = []  # per comp, `suffix_min_start` of the update's rows
        self._mem = [ResourceTracker(n, "memory", th) for n in names]
        self._cpu = [ResourceTracker(n, "cpu", th) for n in names]
        self._cyc = [CyclicTracker(n, th, i) for i, n in enumerate(names)]
        self._cascade = CascadeTracker(th)
        self._budget = BudgetWatch(names, th) if cfg.sample_exhaustion else None
        self._closed: float | None = None  # end of the last closed minute
        self._task_mark = -math.inf
        self._res_mark = -math.inf
        self._rows = empty_columns(ROW_KEYS)  # rows of the open minute (already seen by bursts)
        self._res = empty_columns(RES_KEYS)

    def _ancestry(self, i: int) -> set[int]:
        """Components upstream or downstream of `i` (those a cascade through `i` may involve)."""
        down = {j for j in self._parents if j != i and i in ancestors(j, self._parents)}
        return ancestors(i, self._parents) | down

    @property
    def watermark(self) -> float | None:
        """End of the last closed minute (epoch seconds), or None before any input."""
        return self._closed

    def update(
        self,
        tasks: TaskRunBatch | None = None,
        resources: ResourceBatch | None = None,
        *,
        until: float | None = None,
        running: RunningBatch | None = None,
    ) -> DetectionResult:
        """Feed new rows and samples; return the alarms they raise.

        Args:
            tasks: task runs that ended since the last call (any order; late rows are skipped).
            resources: resource samples since the last call.
            until: input is complete up to this time, so minutes ending by then may close;
                defaults to the latest time in the input.
            running: runs still in flight (started, not ended) when the input was read; with
                the rows that end after a minute, they are what was in flight in it. None:
                only the rows speak (a replay of finished history).

        Returns:
            New alarms, and reasons for any input that was skipped.
        """
        closed = self._closed if self._closed is not None else -math.inf
        rows, skipped = (
            tasks.clean(self._index, max(self._task_mark, closed))
            if tasks is not None and len(tasks)
            else (empty_columns(ROW_KEYS), [])
        )
        res, skipped_res = (
            resources.clean(self._index, max(self._res_mark, closed))
            if resources is not None and len(resources)
            else (empty_columns(RES_KEYS), [])
        )
        skipped += skipped_res
        self._running = [math.inf] * len(self._burst)
        if running is not None and len(running):
            for c, first in running.oldest(self._index).items():
                self._running[c] = first
        latest = [float(x[-1]) for x in (rows["end"], res["ts"]) if x.size]
        if until is not None and math.isfinite(until):
            latest.append(float(until))
        if not latest:
            skipped.append(Skipped("empty", 0, "no usable rows or samples in this update"))
            return DetectionResult((), tuple(skipped))
        if self._closed is None:
            first = (
                min(float(x[0]) for x in (rows["end"], res["ts"]) if x.size)
                if (rows["end"].size or res["ts"].size)
                else max(latest)
            )
            self._closed = math.floor(first / 60.0) * 60.0
        horizon = max(latest)
        alarms: list[Alarm] = []
        agg = concat_columns(self._rows, rows)
        allres = concat_columns(self._res, res)
        n_min = max(0, math.floor((horizon - self._closed) / 60.0))
        bounds = self._closed + 60.0 * np.arange(1, n_min + 1)
        edges = np.concatenate([[self._closed], bounds])
        # Split the batch by component once, then cut each component's rows at the minute
        # bounds: the same rows in the same order as masking every minute's slice per component
        # (rows are sorted by time), without the per-minute masks and dicts (most of a full
        # pass's bookkeeping when thousands of minutes close in one update)
        n = len(self._burst)
        # (most incremental updates close no minute and bring a few rows: split only what is read)
        new = by_component(rows, "end", n, bounds, lists=True) if rows["end"].size else []
        minute = by_component(agg, "end", n, edges, valid=True) if n_min else []
        samples = by_component(allres, "ts", n, edges) if n_min else []
        # per component, the earliest start among the rows from each one on (end order): the
        # oldest run in flight at a minute's end is the earliest start of the rows ending after
        self._first = [suffix_min_start(m.cols) for m in minute] if self.config.hangs else []
        for i, b in enumerate(bounds.tolist()):
            alarms += self._per_task(new, i)
            alarms += self._close_minute(b, minute, samples, i)
            self._closed = b
        alarms += self._per_task(new, n_min)
        if self._budget is not None and res["ts"].size:
            alarms += self._budget.observe(res["ts"], res["comp"], res["mem"], res["limit"])
        if rows["end"].size:
            self._task_mark = max(self._task_mark, float(rows["end"][-1]))
        if res["ts"].size:
            self._res_mark = max(self._res_mark, float(res["ts"][-1]))
        self._rows = slice_columns(
            agg, int(np.searchsorted(agg["end"], self._closed, "left")), agg["end"].size
        )
        self._res = slice_columns(
            allres, int(np.searchsorted(allres["ts"], self._closed, "left")), allres["ts"].size
        )
        alarms.sort(key=lambda a: a.at)
        return DetectionResult(tuple(alarms), tuple(skipped))

    def _per_task(self, new: list[Split], i: int) -> list[Alarm]:
        """Feed the bursts the new rows of segment `i` (before bound `i`, or after the last)."""
        alarms: list[Alarm] = []
        for c, part in enumerate(new):
            lo, hi = part.span(i)
            if hi <= lo:
                continue
            found = self._burst[c].observe(
                part.lists["end"][lo:hi], part.lists["failed"][lo:hi], part.lists["code"][lo:hi]
            )
            for alarm in found:
                self._cascade.on_burst(c, alarm)
            alarms += found
            flo, fhi = part.failed_span(i)
            if fhi > flo:
                self._cyc[c].add(part.fail_end[flo:fhi], part.fail_code[flo:fhi])
        return alarms

    def _close_minute(
        self, end: float, minute: list[Split], samples: list[Split], i: int
    ) -> list[Alarm]:
        """Close the minute ending at `end`: segment `i + 1` of the splits (after `edges[i]`)."""
        out: list[Alarm | None] = []
        tried, ok = [], []
        if self.config.throughput:
            for c in range(len(self._burst)):
                lo, hi = minute[c].span(i + 1)
                tried.append(int(hi - lo))
                ok.append(int(hi - lo - minute[c].cols["failed"][lo:hi].sum()))
        logs = []
        for c in range(len(self._burst)):
            rows = minute[c]
            lo, hi = rows.span(i + 1)
            logs.append(np.log(rows.cols["duration"][lo:hi][rows.cols["valid"][lo:hi]]))
        if self.config.degradation_common_mode and len(logs) > 1:
            meds = [minute_median(x, self.config.thresholds.deg_min_n) for x in logs]
            shared = [common_mode(meds, c) for c in range(len(logs))]
            # a minute the others cannot speak for is a gap, not a raw value on another scale
            logs = [x[:0] if math.isnan(m) else x - m for x, m in zip(logs, shared, strict=True)]
        for c in range(len(self._burst)):
            self._burst[c].close_minute(end)
            out.append(self._deg[c].close_minute(end, logs[c]))
            if self.config.throughput:
                # flow conservation: a stage's input is what its upstream stages completed,
                # and at least what it attempted itself (all a first stage's rows show)
                fed = max(tried[c], sum(ok[u] for u in self._parents[c]))
                out.append(self._tput[c].close_minute(end, ok[c], fed))
            res = samples[c]
            lo, hi = res.span(i + 1)
            if hi > lo:
                out.append(
                    self._mem[c].close_minute(
                        end, res.cols["mem"][lo:hi], float(res.cols["limit"][hi - 1])
                    )
                )
                out.append(self._cpu[c].close_minute(end, res.cols["cpu"][lo:hi], 100.0))
            out.append(self._cyc[c].close_minute(end))
            if self.config.hangs:
                out.append(self._close_hang(c, end, minute[c], i))
        failures = FailureTimes(self._cyc)
        codes = {c: t.codes for c, t in enumerate(self._cyc)}
        out.append(
            self._cascade.close_minute(
                end, failures, self.config.components, self._parents, self._related, codes
            )
        )
        return [a for a in out if a is not None]

    def _close_hang(self, c: int, end: float, rows: Split, i: int) -> Alarm | None:
        """Feed component `c`'s hang tracker the minute ending at `end` (segment `i + 1`)."""
        lo, hi = rows.span(i + 1)
        dur = rows.cols["duration"][lo:hi]
        known = dur[np.isfinite(dur)]
        longest = float(known.max()) if known.size else math.nan
        last = float(rows.cols["end"][hi - 1]) if hi > lo else math.nan
        first = min(float(self._first[c][rows.cuts[i + 2]]), self._running[c])
        oldest = first if first <= end else None
        return self._hang[c].close_minute(end, int(hi - lo), longest, last, oldest)

    def state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of everything the engine has learnt."""
        return dump_state(self)

    @classmethod
    def from_state(cls, config: EngineConfig, state: dict[str, Any]) -> DetectionEngine:
        """Rebuild an engine from `state()` output.

        Raises:
            ValueError: the state is of another version or for other components.
        """
        if state.get("version") != STATE_VERSION or tuple(state["components"]) != config.components:
            raise ValueError("state was saved by another engine version or component set")
        return load_state(cls(config), state)
