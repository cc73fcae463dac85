"""The pure core: every breaker decision, with no Prefect, no I/O, no logging and no clock reads.

Time comes in as a number (`now`), randomness as a number (`u` in [0, 1)). Functions take a
frozen `BreakerRecord` and return a new one plus the events it caused; nothing hidden mutates.
The sliding windows (`windows.py`) are the one explicit exception: O(1) accumulators owned by
their driver, as in Resilience4j, because copying a window per call would cost more than the
call they protect.
"""

from prefect_ft.core.backoff import (
    BackoffStrategy,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
    RandomSource,
    delays,
)
from prefect_ft.core.classify import OutcomeClassifier
from prefect_ft.core.conditions import (
    AllOf,
    AnyOf,
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    TripCondition,
    TripStats,
)
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.machine import (
    Admission,
    Transition,
    admit,
    evaluate,
    on_outcome,
    set_overlay,
)
from prefect_ft.core.ramp import ramp_admits, recovery_fraction
from prefect_ft.core.states import BreakerRecord
from prefect_ft.core.windows import CountWindow, TimeWindow, WindowCounts

__all__ = [
    "Admission",
    "AllOf",
    "AnyOf",
    "BackoffStrategy",
    "BreakerConfig",
    "BreakerEvent",
    "BreakerRecord",
    "ConsecutiveFailures",
    "CountWindow",
    "DecorrelatedJitter",
    "EqualJitter",
    "ExponentialBackoff",
    "FailureRate",
    "FullJitter",
    "OutcomeClassifier",
    "RandomSource",
    "SlowCallRate",
    "TimeWindow",
    "Transition",
    "TripCondition",
    "TripStats",
    "WindowCounts",
    "admit",
    "delays",
    "evaluate",
    "on_outcome",
    "ramp_admits",
    "recovery_fraction",
    "set_overlay",
]
