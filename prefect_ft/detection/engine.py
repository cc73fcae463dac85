"""The incremental detection engine: task-run and resource batches in, alarms out.

Time advances in closed minutes aligned to epoch minutes. Per-task detectors (error bursts) see
each row as soon as it arrives; per-minute detectors (degradation, throughput, exhaustion, cyclic,
cascade) run when a minute closes, i.e. once the input is complete up to its end (`until`). Every
decision
uses only data up to its time, so feeding a history in one batch or in many gives the same
alarms, and `state()` / `from_state()` let a flow resume exactly where its last run stopped.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prefect_ft.detection._split import FailureTimes, Split, by_component
from prefect_ft.detection.alarms import Alarm, DetectionResult, Skipped
from prefect_ft.detection.batch import ResourceBatch, RunningBatch, TaskRunBatch
from prefect_ft.detection.budget_watch import BudgetWatch
from prefect_ft.detection.burst import BurstTracker
from prefect_ft.detection.cascade import ancestors
from prefect_ft.detection.cyclic import CyclicTracker
from prefect_ft.detection.degradation import DegradationTracker, common_mode, minute_median
from prefect_ft.detection.hang import HangTracker
from prefect_ft.detection.propagation import CascadeTracker
from prefect_ft.detection.resource import ResourceTracker
from prefect_ft.detection.thresholds import Thresholds, load_thresholds
from prefect_ft.detection.throughput import ThroughputTracker

__all__ = ["PIPELINE", "DetectionEngine", "EngineConfig"]

STATE_VERSION = 2  # 2: degradation keeps a seasonal MinuteBaseline; throughput trackers
PIPELINE = ("doc-processing", "ml-inference", "ipc", "quality-validation")
_ROW_KEYS = ("end", "duration", "failed", "code", "comp")
_RES_KEYS = ("ts", "comp", "mem", "limit", "cpu")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine watches.

    Attributes:
        components: component names; batch rows naming others are skipped.
        edges: dependency edges `(upstream, downstream)` used for cascades.
        thresholds: frozen detector thresholds.
        throughput: also watch successful completions per minute for drops
            (`throughput.ThroughputTracker`: below every prediction, over 3 minutes, and below
            half the stage's input: its upstream stages' completions, or at least its own
            attempts, so work that stopped arriving is not a drop). On by default since
            2026-12-02: the synthetic tables are the same with it on and off (targeted, drawn
            and daily-load sets; benchmarks/RESULTS.md).
        run_baseline_min_tasks: 0 (default) learns each component's burst baseline from hours
            of closed minutes; a positive number learns it from the component's own earlier
            tasks in this history once that many were seen (`burst.BurstTracker`), for runs too
            short for the long baseline (the minute-based detectors stay as they are).
        burst_holdoff_by_type: False (default) holds a component's burst alarms for
            `holdoff_s` after one; True holds them per failure type (the episode's dominant
            type), so a crash refusing connections right after a burst of model errors on the
            same component is reported too. Off by default: not yet measured against the
            synthetic false-alarm budget (an episode of mixed types may alarm once per type).
        degradation_common_mode: judge each component's durations relative to the other
            components' (minus the median of their minute medians, `degradation.common_mode`),
            so a load that slows every stage alike is not a degradation and a gentle ramp on one
            stage shows on the first day. Off by default: a slowdown of every stage at once
            cancels too, and a minute in which another stage has no median is a gap.
        hangs: also watch the runs in flight for a stage that hangs (`hang.HangTracker`: its
            oldest run in flight older than twice its learnt duration limit while it ends
            nothing it would have ended), which no other detector sees when the stage is the
            first one. The runs in flight come from the batch's rows (a run that ended after a
            minute closed was in flight in it) and from `update(running=...)`, the runs still
            RUNNING when the history was read.
        sample_exhaustion: also judge each component's raw memory samples against the limit
            they carry as they arrive (`exhaustion.BudgetWatch`), for runs too short for the
            minute floors and for processes with their own memory budget. Off by default.
    """

    components: tuple[str, ...] = PIPELINE
    edges: tuple[tuple[str, str], ...] = tuple(itertools.pairwise(PIPELINE))
    thresholds: Thresholds = field(default_factory=load_thresholds)
    throughput: bool = True
    run_baseline_min_tasks: int = 0
    burst_holdoff_by_type: bool = False
    sample_exhaustion: bool = False
    degradation_common_mode: bool = False
    hangs: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.burst_holdoff_by_type, bool):
            raise ValueError(
                f"burst_holdoff_by_type must be True or False (got {self.burst_holdoff_by_type!r})"
            )
        if self.run_baseline_min_tasks < 0:
            raise ValueError(
                f"run_baseline_min_tasks must be >= 0 (got {self.run_baseline_min_tasks})"
            )
        if len(set(self.components)) != len(self.components) or not self.components:
            raise ValueError("components must be non-empty and unique")
        for up, down in self.edges:
            if up not in self.components or down not in self.components or up == down:
                raise ValueError(f"edge {up!r} -> {down!r} names an unknown component")


def _empty(keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {
        k: np.empty(
            0, dtype=bool if k == "failed" else np.int64 if k in ("code", "comp") else float
        )
        for k in keys
    }


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _slice(d: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: v[lo:hi] for k, v in d.items()}


def _suffix_min_start(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Earliest start (`end - duration`) among rows `j:` for each `j`, then inf (rows in end
    order; an unknown duration is no start)."""
    start = cols["end"] - cols["duration"]
    start = np.where(np.isfinite(start), start, np.inf)
    return np.concatenate([np.minimum.accumulate(start[::-1])[::-1], [np.inf]])


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
        self._first: list[np.ndarray] = []  # per comp, `_suffix_min_start` of the update's rows
        self._mem = [ResourceTracker(n, "memory", th) for n in names]
        self._cpu = [ResourceTracker(n, "cpu", th) for n in names]
        self._cyc = [CyclicTracker(n, th, i) for i, n in enumerate(names)]
        self._cascade = CascadeTracker(th)
        self._budget = BudgetWatch(names, th) if cfg.sample_exhaustion else None
        self._closed: float | None = None  # end of the last closed minute
        self._task_mark = -math.inf
        self._res_mark = -math.inf
        self._rows = _empty(_ROW_KEYS)  # rows of the open minute (already seen by bursts)
        self._res = _empty(_RES_KEYS)

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
            else (_empty(_ROW_KEYS), [])
        )
        res, skipped_res = (
            resources.clean(self._index, max(self._res_mark, closed))
            if resources is not None and len(resources)
            else (_empty(_RES_KEYS), [])
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
        agg = _concat(self._rows, rows)
        allres = _concat(self._res, res)
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
        self._first = [_suffix_min_start(m.cols) for m in minute] if self.config.hangs else []
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
        self._rows = _slice(
            agg, int(np.searchsorted(agg["end"], self._closed, "left")), agg["end"].size
        )
        self._res = _slice(
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
        return {
            "version": STATE_VERSION,
            "components": list(self.config.components),
            "closed": self._closed,
            "task_mark": self._task_mark if math.isfinite(self._task_mark) else None,
            "res_mark": self._res_mark if math.isfinite(self._res_mark) else None,
            "rows": {k: v.tolist() for k, v in self._rows.items()},
            "res": {k: v.tolist() for k, v in self._res.items()},
            "burst": [t.state() for t in self._burst],
            "deg": [t.state() for t in self._deg],
            "tput": [t.state() for t in self._tput],
            "hang": [t.state() for t in self._hang],
            "mem": [t.state() for t in self._mem],
            "cpu": [t.state() for t in self._cpu],
            "cyc": [t.state() for t in self._cyc],
            "cascade": self._cascade.state(),
            **({"budget": self._budget.state()} if self._budget is not None else {}),
        }

    @classmethod
    def from_state(cls, config: EngineConfig, state: dict[str, Any]) -> DetectionEngine:
        """Rebuild an engine from `state()` output.

        Raises:
            ValueError: the state is of another version or for other components.
        """
        if state.get("version") != STATE_VERSION or tuple(state["components"]) != config.components:
            raise ValueError("state was saved by another engine version or component set")
        engine = cls(config)
        engine._closed = state["closed"]
        engine._task_mark = -math.inf if state["task_mark"] is None else state["task_mark"]
        engine._res_mark = -math.inf if state["res_mark"] is None else state["res_mark"]
        template = {**_empty(_ROW_KEYS), **_empty(_RES_KEYS)}
        engine._rows = {k: np.asarray(v, dtype=template[k].dtype) for k, v in state["rows"].items()}
        engine._res = {k: np.asarray(v, dtype=template[k].dtype) for k, v in state["res"].items()}
        for key, trackers in (
            ("burst", engine._burst),
            ("deg", engine._deg),
            ("tput", engine._tput),
            ("mem", engine._mem),
            ("cpu", engine._cpu),
            ("cyc", engine._cyc),
        ):
            for tracker, data in zip(trackers, state[key], strict=True):
                tracker.load(data)
        engine._cascade.load(state["cascade"])
        for tracker, data in zip(engine._hang, state.get("hang") or [], strict=False):
            tracker.load(data)  # states saved before the hang detector start it afresh
        if engine._budget is not None and "budget" in state:
            engine._budget.load(state["budget"])
        return engine
