"""Trip conditions, composable with `|` (any) and `&` (all), as tenacity composes its strategies.

`ConsecutiveFailures(5) | FailureRate(50, minimum_calls=20)` trips on five failures in a row or
on half of the window failing once it holds twenty calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect_ft.core.validation import require

__all__ = [
    "AllOf",
    "AnyOf",
    "ConsecutiveFailures",
    "FailureRate",
    "SlowCallRate",
    "TripCondition",
    "TripStats",
]


@dataclass(frozen=True, slots=True)
class TripStats:
    """What a condition looks at: the record's consecutive failures and the window's totals.

    Calls still in flight for longer than the slow threshold are already counted in `calls` and
    `slow` by the driver (Resilience4j cannot do this: its issue #1597).
    """

    consecutive_failures: int
    calls: int
    failures: int
    slow: int


class TripCondition:
    """Base class: `should_trip(stats)` plus composition operators."""

    __slots__ = ()
    uses_window: bool = False

    def should_trip(self, stats: TripStats) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def reason(self, stats: TripStats) -> str:
        return type(self).__name__

    def slow_call_seconds(self) -> float | None:
        """The slow-call threshold this condition needs timed, if any."""
        return None

    def __or__(self, other: TripCondition) -> AnyOf:
        return AnyOf((self, other))

    def __and__(self, other: TripCondition) -> AllOf:
        return AllOf((self, other))


@dataclass(frozen=True, slots=True)
class ConsecutiveFailures(TripCondition):
    """Trip after `threshold` failures in a row (pybreaker's rule)."""

    threshold: int

    def __post_init__(self) -> None:
        t = self.threshold
        require(isinstance(t, int) and t >= 1, "failure_threshold", "an integer >= 1", t)

    def should_trip(self, stats: TripStats) -> bool:
        return stats.consecutive_failures >= self.threshold

    def reason(self, stats: TripStats) -> str:
        return f"{stats.consecutive_failures} consecutive failures (threshold {self.threshold})"


def _check_rate(field: str, percent: float, minimum_calls: int) -> None:
    ok = isinstance(percent, int | float) and 0 < percent <= 100
    require(ok, field, "in (0, 100] percent", percent)
    ok = isinstance(minimum_calls, int) and minimum_calls >= 1
    require(ok, "minimum_calls", "an integer >= 1", minimum_calls)


@dataclass(frozen=True, slots=True)
class FailureRate(TripCondition):
    """Trip when at least `percent` % of the window's calls failed, once it holds `minimum_calls`."""

    percent: float
    minimum_calls: int = 10
    uses_window = True

    def __post_init__(self) -> None:
        _check_rate("failure_rate_threshold", self.percent, self.minimum_calls)

    def should_trip(self, stats: TripStats) -> bool:
        n = stats.calls
        return n >= self.minimum_calls and stats.failures * 100.0 >= self.percent * n

    def reason(self, stats: TripStats) -> str:
        rate = 100.0 * stats.failures / max(stats.calls, 1)
        return f"failure rate {rate:.1f}% over {stats.calls} calls (threshold {self.percent}%)"


@dataclass(frozen=True, slots=True)
class SlowCallRate(TripCondition):
    """Trip when at least `percent` % of calls took longer than `slow_seconds` (in flight too)."""

    percent: float
    slow_seconds: float
    minimum_calls: int = 10
    uses_window = True

    def __post_init__(self) -> None:
        _check_rate("slow_call_rate_threshold", self.percent, self.minimum_calls)
        s = self.slow_seconds
        require(isinstance(s, int | float) and s > 0, "slow_call_seconds", "> 0 seconds", s)

    def should_trip(self, stats: TripStats) -> bool:
        n = stats.calls
        return n >= self.minimum_calls and stats.slow * 100.0 >= self.percent * n

    def reason(self, stats: TripStats) -> str:
        rate = 100.0 * stats.slow / max(stats.calls, 1)
        return (
            f"slow-call rate {rate:.1f}% over {stats.calls} calls "
            f"(> {self.slow_seconds} s; threshold {self.percent}%)"
        )

    def slow_call_seconds(self) -> float | None:
        return float(self.slow_seconds)


@dataclass(frozen=True, slots=True)
class AnyOf(TripCondition):
    """Trip when any member trips."""

    members: tuple[TripCondition, ...]

    def __post_init__(self) -> None:
        require(len(self.members) >= 1, "trip conditions", "at least one condition", self.members)

    @property
    def uses_window(self) -> bool:  # type: ignore[override]
        return any(m.uses_window for m in self.members)

    def should_trip(self, stats: TripStats) -> bool:
        return any(m.should_trip(stats) for m in self.members)

    def reason(self, stats: TripStats) -> str:
        return "; ".join(m.reason(stats) for m in self.members if m.should_trip(stats))

    def slow_call_seconds(self) -> float | None:
        found = [s for m in self.members if (s := m.slow_call_seconds()) is not None]
        return min(found) if found else None


@dataclass(frozen=True, slots=True)
class AllOf(AnyOf):
    """Trip only when every member trips."""

    def should_trip(self, stats: TripStats) -> bool:
        return all(m.should_trip(stats) for m in self.members)

    def reason(self, stats: TripStats) -> str:
        return " and ".join(m.reason(stats) for m in self.members)
