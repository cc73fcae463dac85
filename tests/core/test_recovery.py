"""Recovery decisions on a fake clock: escalation order, backoff bounds and reset, rollback."""

from __future__ import annotations

import json
import random

import pytest

from prefect_ft.core.recovery import (
    DEFAULT_STRATEGIES,
    FAILURE_TYPES,
    STRATEGIES,
    Alert,
    RecoveryConfig,
    RecoveryState,
    Refuse,
    Run,
    Wait,
    plan,
    record_outcome,
    reset,
    rollback_for,
    strategy_for,
)


def fail_once(state: RecoveryState, ft: str | None, cfg: RecoveryConfig, now: float, u: float):
    decision = plan(state, ft, cfg, now)
    assert isinstance(decision, Run), decision
    return decision, record_outcome(decision.state, False, now + 1, u, cfg)


def test_every_failure_type_has_a_strategy_and_the_names_match_the_block() -> None:
    from typing import get_args

    from prefect_ft.blocks import RecoveryAction

    assert set(DEFAULT_STRATEGIES) == set(FAILURE_TYPES) and len(FAILURE_TYPES) == 8
    assert set(STRATEGIES) == set(get_args(RecoveryAction))


def test_escalation_order_immediate_short_long_then_one_alert() -> None:
    cfg = RecoveryConfig(attempts_per_phase=2)
    state, now, seen = RecoveryState("ml-inference"), 0.0, []
    for _ in range(6):
        decision, state = fail_once(state, "ConnectionError", cfg, now, 0.999)
        seen.append((decision.phase, decision.attempt, decision.strategy))
        now = state.next_allowed_at
    assert seen == [
        ("immediate", 0, "connection-reset"),
        ("immediate", 1, "connection-reset"),
        ("short-term", 0, "graceful-restart"),
        ("short-term", 1, "graceful-restart"),
        ("long-term", 0, "model-reload"),
        ("long-term", 1, "model-reload"),
    ]
    alert = plan(state, "ConnectionError", cfg, now)
    assert isinstance(alert, Alert) and "an operator must act" in alert.reason
    again = plan(alert.state, "ConnectionError", cfg, now + 100)
    assert isinstance(again, Refuse), "one alert per outage, not one per event"


def test_component_action_overrides_only_the_immediate_phase() -> None:
    cfg = RecoveryConfig(action="validation-reset")
    assert strategy_for("Timeout", 0, cfg) == "validation-reset"
    assert strategy_for("Timeout", 1, cfg) == "graceful-restart"
    assert strategy_for("ResourceExhaustion", 2, RecoveryConfig()) == "resource-reallocation"
    assert strategy_for(None, 0, RecoveryConfig()) == "graceful-restart"


def test_backoff_is_full_jitter_within_doubling_bounds_capped_at_60s() -> None:
    cfg = RecoveryConfig(attempts_per_phase=100)
    rng = random.Random(7)
    state, now = RecoveryState("ipc"), 0.0
    for n in range(12):
        _, state = fail_once(state, "Timeout", cfg, now, rng.random())
        waited = state.next_allowed_at - (now + 1)
        assert 0 <= waited < min(60.0, 2.0**n) + 1e-9, (n, waited)
        now = state.next_allowed_at
    # the top of the draw reaches the ceiling: 1, 2, 4 ... 60
    _, top = fail_once(RecoveryState("ipc", failures=3), "Timeout", cfg, 0.0, 0.999999)
    assert top.next_allowed_at == pytest.approx(1 + 8.0, abs=1e-4)
    _, capped = fail_once(RecoveryState("ipc", failures=30), "Timeout", cfg, 0.0, 0.999999)
    assert capped.next_allowed_at == pytest.approx(1 + 60.0, abs=1e-3)


def test_plan_waits_until_the_backoff_ends_and_does_not_redraw() -> None:
    cfg = RecoveryConfig()
    _, state = fail_once(RecoveryState("ipc"), "Timeout", cfg, 0.0, 0.5)
    until = state.next_allowed_at
    assert until > 1.0
    for t in (1.0, until - 0.01):
        w = plan(state, "Timeout", cfg, t)
        assert isinstance(w, Wait) and w.until == until
    assert isinstance(plan(state, "Timeout", cfg, until), Run)


def test_backoff_and_escalation_reset_after_10_minutes_healthy() -> None:
    cfg = RecoveryConfig()
    state = RecoveryState("ipc")
    for now in (0.0, 100.0):
        _, state = fail_once(state, "Timeout", cfg, now, 0.9)
    assert state.phase == 2 and state.failures == 2
    run = plan(state, "Timeout", cfg, 200.0)
    assert isinstance(run, Run)
    healed = record_outcome(run.state, True, 201.0, 0.9, cfg)
    assert healed.healthy_since == 201.0
    # failing again within 10 min: escalation goes on from where it was
    soon = plan(healed, "Timeout", cfg, 201.0 + 599)
    assert isinstance(soon, Run) and soon.phase == "long-term"
    assert soon.state.healthy_since is None
    # after 10 min healthy: back to the cheapest strategy, no backoff
    later = plan(healed, "Timeout", cfg, 201.0 + 600)
    assert isinstance(later, Run) and later.phase == "immediate"
    assert later.strategy == "connection-reset" and later.state.failures == 0
    assert later.state.stats == healed.stats, "statistics survive the reset"


def test_success_rate_per_strategy_and_json_round_trip() -> None:
    cfg = RecoveryConfig(attempts_per_phase=3)
    state = RecoveryState("doc-processing")
    _, state = fail_once(state, "ProcessingError", cfg, 0.0, 0.1)
    run = plan(state, "ProcessingError", cfg, 100.0)
    assert isinstance(run, Run)
    state = record_outcome(run.state, True, 101.0, 0.1, cfg)
    stats = state.stats_for("graceful-restart")
    assert (stats.attempts, stats.successes, stats.success_rate) == (2, 1, 0.5)
    assert state.stats_for("model-reload").success_rate is None
    text = json.dumps(state.to_dict())
    assert RecoveryState.from_dict(json.loads(text)) == state
    assert RecoveryState.from_dict({**json.loads(text), "from_a_newer_writer": 1}) == state


def test_rollback_only_for_what_can_be_undone() -> None:
    assert rollback_for("model-reload", RecoveryConfig()) == "reload the previous model version"
    assert rollback_for("resource-reallocation", RecoveryConfig()) is not None
    assert rollback_for("graceful-restart", RecoveryConfig()) is None
    assert rollback_for("model-reload", RecoveryConfig(rollback=False)) is None


def test_operator_reset_starts_over() -> None:
    state = RecoveryState("x", phase=3, alerted=True, failures=9, next_allowed_at=1e9)
    run = plan(reset(state), "Timeout", RecoveryConfig(), 0.0)
    assert isinstance(run, Run) and run.phase == "immediate"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attempts_per_phase": 0}, "attempts_per_phase"),
        ({"base_seconds": 0}, "base_seconds"),
        ({"cap_seconds": float("inf")}, "cap_seconds"),
        ({"base_seconds": 10, "cap_seconds": 5}, "cap_seconds"),
        ({"action": "reboot"}, "action"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RecoveryConfig(**kwargs)


def test_unknown_failure_type_is_refused_with_the_allowed_names() -> None:
    decision = plan(RecoveryState("x"), "Gremlins", RecoveryConfig(), 0.0)
    assert isinstance(decision, Refuse)
    assert "Gremlins" in decision.reason and "ConnectionError" in decision.reason


def test_recovery_policy_block_builds_the_core_config() -> None:
    from prefect_ft.blocks import RecoveryPolicy

    cfg = RecoveryPolicy(
        action="model-reload", max_attempts=4, rollback_on_failure=False
    ).to_config()
    assert (cfg.action, cfg.attempts_per_phase, cfg.rollback) == ("model-reload", 2, False)
    assert RecoveryPolicy().to_config().attempts_per_phase == 1
