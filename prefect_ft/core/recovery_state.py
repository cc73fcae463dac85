"""What recovery decides with: the strategy and phase tables, its config, its stored state and
the decisions `prefect_ft.core.recovery.plan` answers with.

Frozen data only; the escalation rules that read and return it are in `prefect_ft.core.recovery`,
which re-exports every public name here. Split from that module so the data and the decisions
each stay one concern. `RecoveryState` is stored as JSON (`to_dict` / `from_dict`) under
`prefect-ft:recovery:state:<component>`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from prefect_ft.core.backoff import FullJitter

__all__ = [
    "DEFAULT_STRATEGIES",
    "FAILURE_TYPES",
    "PHASES",
    "STRATEGIES",
    "Alert",
    "Decision",
    "RecoveryConfig",
    "RecoveryState",
    "Refuse",
    "Run",
    "StrategyStats",
    "Wait",
]

Strategy = Literal[
    "connection-reset",
    "model-reload",
    "graceful-restart",
    "resource-reallocation",
    "validation-reset",
]
STRATEGIES: tuple[Strategy, ...] = (
    "connection-reset",
    "model-reload",
    "graceful-restart",
    "resource-reallocation",
    "validation-reset",
)
PhaseName = Literal["immediate", "short-term", "long-term"]
PHASES: tuple[PhaseName, ...] = ("immediate", "short-term", "long-term")
FAILURE_TYPES: tuple[str, ...] = (
    "Timeout",
    "ResourceExhaustion",
    "ModelInferenceError",
    "ProcessingError",
    "ValidationError",
    "ConnectionError",
    "PerformanceDegradation",
    "NetworkError",
)
# the cheapest action that plausibly clears each failure type (DESIGN §7's taxonomy)
DEFAULT_STRATEGIES: dict[str, Strategy] = {
    "Timeout": "connection-reset",
    "ResourceExhaustion": "resource-reallocation",
    "ModelInferenceError": "model-reload",
    "ProcessingError": "graceful-restart",
    "ValidationError": "validation-reset",
    "ConnectionError": "connection-reset",
    "PerformanceDegradation": "resource-reallocation",
    "NetworkError": "connection-reset",
}


@dataclass(frozen=True, slots=True)
class RecoveryConfig:
    """How one component's recovery escalates and backs off (built by `RecoveryPolicy.to_config`).

    Attributes:
        action: The component's own immediate strategy, replacing the table's; None for the table.
        attempts_per_phase: Attempts in each of the three phases before escalating (1..100).
        base_seconds: Backoff before the second attempt; doubles per failed attempt.
        cap_seconds: Longest backoff (>= base_seconds).
        reset_after_seconds: Healthy time after which escalation and backoff start over.
        rollback: Undo a strategy whose validation failed, where it can be undone.
    """

    action: Strategy | None = None
    attempts_per_phase: int = 1
    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    reset_after_seconds: float = 600.0
    rollback: bool = True

    def __post_init__(self) -> None:
        if self.action is not None and self.action not in STRATEGIES:
            raise ValueError(f"action must be one of {', '.join(STRATEGIES)} (got {self.action!r})")
        n = self.attempts_per_phase
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:
            raise ValueError(f"attempts_per_phase must be an int in 1..100 (got {n!r})")
        for name in ("base_seconds", "cap_seconds", "reset_after_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
        if self.cap_seconds < self.base_seconds:
            raise ValueError(
                f"cap_seconds ({self.cap_seconds}) must be >= base_seconds ({self.base_seconds})"
            )

    @property
    def backoff(self) -> FullJitter:
        """The full-jitter backoff between attempts."""
        return FullJitter(self.base_seconds, self.cap_seconds)


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """How often one strategy was tried on a component, and how often validation passed."""

    strategy: str
    attempts: int = 0
    successes: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successes / attempts, or None before the first attempt."""
        return self.successes / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True)
class RecoveryState:
    """One component's recovery progress, shared through the store (JSON via `to_dict`).

    `phase` indexes `PHASES` (3 = the operator's turn); `attempt` counts failed attempts in that
    phase; `failures` counts failed attempts since the last reset and drives the backoff.
    """

    component: str
    phase: int = 0
    attempt: int = 0
    failures: int = 0
    last_strategy: str | None = None
    last_attempt_at: float | None = None
    next_allowed_at: float = 0.0
    healthy_since: float | None = None
    alerted: bool = False
    stats: tuple[StrategyStats, ...] = field(default=())

    @property
    def phase_name(self) -> str:
        """`immediate`, `short-term`, `long-term` or `operator`."""
        return PHASES[self.phase] if self.phase < len(PHASES) else "operator"

    def stats_for(self, strategy: str) -> StrategyStats:
        """The statistics of `strategy` on this component (zeros if never tried)."""
        return next((s for s in self.stats if s.strategy == strategy), StrategyStats(strategy))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the stores keep records as text)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["stats"] = [[s.strategy, s.attempts, s.successes] for s in self.stats]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecoveryState:
        """Inverse of `to_dict`; unknown keys (a newer writer) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["stats"] = tuple(
            StrategyStats(str(s), int(a), int(ok)) for s, a, ok in kwargs.get("stats", ())
        )
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Run:
    """Run `strategy` now (attempt `attempt` of phase `phase`); `state` is what to store."""

    strategy: Strategy
    phase: str
    attempt: int
    state: RecoveryState


@dataclass(frozen=True, slots=True)
class Wait:
    """Back off: plan again at `until` (the store's clock)."""

    until: float
    reason: str
    state: RecoveryState


@dataclass(frozen=True, slots=True)
class Alert:
    """Every phase failed: raise one operator alert; `state` remembers that it was raised."""

    reason: str
    state: RecoveryState


@dataclass(frozen=True, slots=True)
class Refuse:
    """Do nothing, for `reason` (bad input, or an operator was already alerted)."""

    reason: str
    state: RecoveryState


Decision = Run | Wait | Alert | Refuse
