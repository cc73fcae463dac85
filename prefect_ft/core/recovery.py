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

The tables, the config, the state and the decision types: `prefect_ft.core.recovery_state`.
"""

from __future__ import annotations

from dataclasses import replace

from prefect_ft.core import recovery_state
from prefect_ft.core.recovery_state import (
    DEFAULT_STRATEGIES,
    FAILURE_TYPES,
    PHASES,
    Alert,
    Decision,
    RecoveryConfig,
    RecoveryState,
    Refuse,
    Run,
    Strategy,
    StrategyStats,
    Wait,
)
from prefect_ft.core.recovery_state import (
    STRATEGIES as STRATEGIES,  # re-exported (prefect_ft.recovery.options imports it here)
)

# the data names come from recovery_state, written once there
__all__ = [
    *recovery_state.__all__,
    "plan",
    "record_outcome",
    "reset",
    "rollback_for",
    "strategy_for",
]

_RESOURCE_TYPES = frozenset({"ResourceExhaustion", "PerformanceDegradation"})
# what a failed validation can undo: a reload goes back to the previous model version, a
# reallocation to the previous budget; a reset or a restart leaves nothing to roll back
_ROLLBACKS: dict[str, str] = {
    "model-reload": "reload the previous model version",
    "resource-reallocation": "restore the previous resource budget",
}


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
