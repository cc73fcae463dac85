"""`EngineConfig`: what a `DetectionEngine` watches, and which optional detectors it runs.

The settings and their validation, kept apart from `engine.py` (which runs the detectors) so
each option's documentation sits beside its default; `engine.py` and `prefect_ft.detection`
re-export both names.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from prefect_ft.detection.thresholds import Thresholds, load_thresholds

__all__ = ["PIPELINE", "EngineConfig"]

PIPELINE = ("doc-processing", "ml-inference", "ipc", "quality-validation")


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
