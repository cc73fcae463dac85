"""Recovery decisions: which strategy heals a component, when to escalate, how long to back off.

Pure: time comes in as `now`, randomness as `u` in [0, 1); nothing here sleeps, reads a clock or
does I/O. The driver (`prefect_ft.recovery`) keeps one `RecoveryState` per component in the store
(written with `cas`), asks `plan` what to do, runs it, and reports with `record_outcome`.

Escalation runs through three phases, `attempts_per_phase` attempts each, then an operator:

- **immediate**: the cheapest strategy for the failure type (`DEFAULT_STRATEGIES`, e.g.
  `connection-reset` for a `ConnectionError`), or the component's own `action` when its
  `RecoveryPolicy` sets one;
- **short-term**: `graceful-restart` (drain, then restart the process);
- **long-term**: `resource-reallocation` for resource and performance faults, else
  `model-reload` (with rollback to the previous version when validation fails);
- **operator**: no strategy left; `plan` answers `Alert` once, then `Refuse` until the component
  has been healthy for `reset_after_seconds` or an operator calls `reset`.

Between attempts the driver waits a full-jitter backoff (`core.backoff.FullJitter`: 1 s doubling
to a 60 s cap, Kubernetes 1.33's reduced CrashLoopBackOff numbers); after `reset_after_seconds`
(10 min) healthy the escalation and the backoff start again from the beginning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
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
    "plan",
    "record_outcome",
    "reset",
    "rollback_for",
    "strategy_for",
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
_RESOURCE_TYPES = frozenset({"ResourceExhaustion", "PerformanceDegradation"})
# what a failed validation can undo: a reload goes back to the previous model version, a
# reallocation to the previous budget; a reset or a restart leaves nothing to roll back
_ROLLBACKS: dict[str, str] = {
    "model-reload": "reload the previous model version",
    "resource-reallocation": "restore the previous resource budget",
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


def strategy_for(failure_type: str | None, phase: int, cfg: RecoveryConfig) -> Strategy:
    """The strategy of `phase` (0..2) for `failure_type` (None: unknown cause, e.g. a trip).

    Raises:
        ValueError: `failure_type` is not one of `FAILURE_TYPES`, or `phase` is out of 0..2.
    """
    if failure_type is not None and failure_type not in DEFAULT_STRATEGIES:
        raise ValueError(
            f"failure_type must be one of {', '.join(FAILURE_TYPES)} (got {failure_type!r})"
        )
    if phase == 0:
        if cfg.action is not None:
            return cfg.action
        return DEFAULT_STRATEGIES.get(failure_type or "", "graceful-restart")
    if phase == 1:
        return "graceful-restart"
    if phase == 2:
        return "resource-reallocation" if failure_type in _RESOURCE_TYPES else "model-reload"
    raise ValueError(f"phase must be in 0..{len(PHASES) - 1} (got {phase!r})")


def reset(state: RecoveryState) -> RecoveryState:
    """Start escalation and backoff over (healthy long enough, or an operator said so); keeps stats."""
    return RecoveryState(component=state.component, stats=state.stats)


def plan(
    state: RecoveryState, failure_type: str | None, cfg: RecoveryConfig, now: float
) -> Decision:
    """Decide what recovery does for a component that is failing at `now`.

    A component healthy for `reset_after_seconds` starts again at the immediate phase with no
    backoff. Every answer carries the state to store; for `Run` the driver stores it with `cas`
    before acting, and reports the result with `record_outcome`. Simultaneous runs are the
    limiter's business (`core.recovery_limits.RecoverySlots`).
    """
    if failure_type is not None and failure_type not in DEFAULT_STRATEGIES:
        reason = (
            f"unknown failure_type {failure_type!r}; expected one of {', '.join(FAILURE_TYPES)}"
        )
        return Refuse(reason, state)
    healthy = state.healthy_since
    if healthy is not None and now - healthy >= cfg.reset_after_seconds:
        state = reset(state)
    elif healthy is not None:
        state = replace(state, healthy_since=None)  # failing again: not healthy any more
    if state.phase >= len(PHASES):
        if state.alerted:
            return Refuse(f"{state.component}: recovery exhausted; waiting for an operator", state)
        reason = (
            f"{state.component}: {state.failures} recovery attempt(s) over {len(PHASES)} phases "
            f"failed (last: {state.last_strategy}); an operator must act"
        )
        return Alert(reason, replace(state, alerted=True))
    if now < state.next_allowed_at:
        reason = f"{state.component}: backing off after {state.failures} failed attempt(s)"
        return Wait(state.next_allowed_at, reason, state)
    strategy = strategy_for(failure_type, state.phase, cfg)
    new = replace(state, last_strategy=strategy, last_attempt_at=now)
    return Run(strategy, state.phase_name, state.attempt, new)


def record_outcome(
    state: RecoveryState, ok: bool, now: float, u: float, cfg: RecoveryConfig | None = None
) -> RecoveryState:
    """Account for the attempt `plan` started (`state.last_strategy`): validated (`ok`) or not.

    Success marks the component healthy (the backoff resets only after `reset_after_seconds`
    of health, so a flapping component keeps escalating). Failure counts one attempt of the
    phase, escalates after `attempts_per_phase`, and sets the next attempt's earliest time with
    full jitter drawn from `u` (drawn once here, so planning again does not redraw).
    """
    cfg = cfg or RecoveryConfig()
    strategy = state.last_strategy or "unknown"
    old = state.stats_for(strategy)
    stat = StrategyStats(strategy, old.attempts + 1, old.successes + bool(ok))
    stats = (*(s for s in state.stats if s.strategy != strategy), stat)
    if ok:
        return replace(state, healthy_since=now, next_allowed_at=now, stats=stats)
    attempt = state.attempt + 1
    phase = state.phase
    if attempt >= cfg.attempts_per_phase:
        phase, attempt = min(phase + 1, len(PHASES)), 0
    delay = cfg.backoff.delay(state.failures, u)
    return replace(
        state,
        phase=phase,
        attempt=attempt,
        failures=state.failures + 1,
        next_allowed_at=now + delay,
        healthy_since=None,
        stats=stats,
    )


def rollback_for(strategy: str, cfg: RecoveryConfig) -> str | None:
    """What to undo after `strategy` failed validation (a one-line description), or None.

    `model-reload` goes back to the previous model version and `resource-reallocation` to the
    previous budget; resets and restarts leave nothing to undo. None also when `cfg.rollback`
    is off.
    """
    if not cfg.rollback:
        return None
    return _ROLLBACKS.get(strategy)
