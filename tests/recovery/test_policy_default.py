"""A RecoveryPolicy left at its defaults lets the failure type choose the immediate strategy."""

from __future__ import annotations

from prefect_ft.blocks import RecoveryPolicy
from prefect_ft.core.recovery import strategy_for


def test_a_default_policy_chooses_by_failure_type() -> None:
    cfg = RecoveryPolicy().to_config()
    assert strategy_for("ConnectionError", 0, cfg) == "connection-reset"
    assert strategy_for("ModelInferenceError", 0, cfg) == "model-reload"


def test_a_policy_with_an_action_keeps_it_in_the_immediate_phase() -> None:
    cfg = RecoveryPolicy(action="graceful-restart").to_config()
    assert strategy_for("ConnectionError", 0, cfg) == "graceful-restart"
