"""Every row of the health table (core/health.py docstring) gives its level, with a reason."""

from __future__ import annotations

import pytest

from prefect_ft.core.health import (
    ComponentHealth,
    HealthInputs,
    HealthRules,
    Level,
    component_health,
    health_level,
    system_health,
    system_level,
)
from prefect_ft.exceptions import ConfigurationError

H, W, D, C = Level.HEALTHY, Level.WARNING, Level.DEGRADED, Level.CRITICAL
RATES = {"calls": 20, "minimum_calls": 10, "failure_threshold": 0.5, "slow_call_threshold": 0.8}

CASES = [
    # (id, inputs, level, a reason that must be given)
    ("closed-quiet", {}, H, None),
    ("half-open", {"breaker_state": "HALF_OPEN"}, W, "breaker HALF_OPEN"),
    ("recovery-ramp", {"breaker_state": "RECOVERY"}, W, "breaker RECOVERY"),
    ("disabled", {"breaker_state": "DISABLED"}, W, "breaker DISABLED"),
    ("metrics-only", {"breaker_state": "METRICS_ONLY"}, W, "breaker METRICS_ONLY"),
    ("open", {"breaker_state": "OPEN", "trips": 1}, D, "breaker OPEN"),
    ("forced-open", {"breaker_state": "FORCED_OPEN"}, D, "breaker FORCED_OPEN"),
    ("open-not-healing", {"breaker_state": "OPEN", "trips": 3}, C, "3 trips in a row"),
    ("failure-rate-low", {**RATES, "failure_rate": 0.2}, H, None),
    ("failure-rate-near", {**RATES, "failure_rate": 0.25}, W, "failure rate 25% near"),
    ("failure-rate-at", {**RATES, "failure_rate": 0.5}, D, "failure rate 50% >= threshold"),
    ("failure-rate-few-calls", {**RATES, "calls": 9, "failure_rate": 1.0}, H, None),
    ("failure-rate-no-threshold", {"calls": 20, "failure_rate": 1.0}, H, None),
    ("slow-near", {**RATES, "slow_call_rate": 0.4}, W, "slow-call rate 40% near"),
    ("slow-at", {**RATES, "slow_call_rate": 0.8}, D, "slow-call rate 80% >= threshold"),
    ("bulkhead-busy", {"bulkhead_saturation": 0.7}, H, None),
    ("bulkhead-high", {"bulkhead_saturation": 0.8}, W, "bulkhead 80% in use"),
    ("bulkhead-full", {"bulkhead_saturation": 1.0}, D, "bulkhead full"),
    ("alarm-low", {"alarm_severity": "LOW"}, W, "recent LOW alarm"),
    ("alarm-medium", {"alarm_severity": "MEDIUM"}, W, "recent MEDIUM alarm"),
    ("alarm-high", {"alarm_severity": "HIGH"}, D, "recent HIGH alarm"),
    ("alarm-critical", {"alarm_severity": "CRITICAL"}, C, "recent CRITICAL alarm"),
    ("recovery-running", {"recovery": "running"}, W, "recovery running"),
    ("recovery-succeeded", {"recovery": "succeeded"}, H, None),
    ("recovery-failed", {"recovery": "failed"}, C, "recovery failed"),
    ("store-down", {"store_available": False}, W, "store unavailable"),
    # the worst rule wins, and every rule that fired is a reason, worst first
    (
        "open-and-recovery-failed",
        {"breaker_state": "OPEN", "trips": 1, "recovery": "failed"},
        C,
        "recovery failed",
    ),
]


@pytest.mark.parametrize(
    ("inputs", "level", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_row_of_the_table_gives_its_level(
    inputs: dict, level: Level, reason: str | None
) -> None:
    h = component_health(HealthInputs(component="ipc", **inputs))
    assert h.level == level
    assert health_level(HealthInputs(**inputs)) == level
    if reason is None:
        assert h.reasons == ()
    else:
        assert any(reason in r for r in h.reasons), h.reasons


def test_reasons_are_worst_first() -> None:
    h = component_health(
        HealthInputs(breaker_state="HALF_OPEN", alarm_severity="HIGH", recovery="failed")
    )
    assert h.reasons == ("recovery failed", "recent HIGH alarm", "breaker HALF_OPEN")


def test_rules_are_tunable() -> None:
    rules = HealthRules(warn_fraction=0.9, bulkhead_warning=0.5, critical_trips=2)
    assert health_level(HealthInputs(**RATES, failure_rate=0.3), rules) == H
    assert health_level(HealthInputs(bulkhead_saturation=0.5), rules) == W
    assert health_level(HealthInputs(breaker_state="OPEN", trips=2), rules) == C


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"breaker_state": "AJAR"}, "breaker_state"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"failure_rate": float("nan")}, "failure_rate"),
        ({"slow_call_threshold": -0.1}, "slow_call_threshold"),
        ({"bulkhead_saturation": 2}, "bulkhead_saturation"),
        ({"alarm_severity": "SEVERE"}, "alarm_severity"),
        ({"recovery": "done"}, "recovery"),
        ({"trips": -1}, "trips"),
    ],
)
def test_bad_input_names_the_field_and_the_range(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{field} must be "):
        HealthInputs(**kwargs)


def test_bad_rules_name_the_field() -> None:
    with pytest.raises(ConfigurationError, match=r"^critical_trips must be an integer >= 1"):
        HealthRules(critical_trips=0)


# -- the system level -------------------------------------------------------------------------
SYSTEM_CASES = [
    ("none", {}, None, H),
    ("all-healthy", {"a": H, "b": H, "c": H}, None, H),
    ("worst-of-all", {"a": H, "b": W, "c": H}, None, W),
    ("one-degraded-of-three", {"a": D, "b": H, "c": H}, None, D),
    ("one-critical", {"a": C, "b": H, "c": H}, None, C),
    # a non-critical component lowers the system to Degraded at most
    ("non-critical-capped", {"a": C, "b": H, "c": H}, {"b", "c"}, D),
    ("critical-one-critical", {"a": C, "b": H, "c": H}, {"a"}, C),
    # half or more of the components degraded or worse: one incident, Critical
    ("half-down", {"a": D, "b": D, "c": H, "d": H}, None, C),
    ("half-down-non-critical", {"a": D, "b": D, "c": H, "d": H}, set(), C),
    ("under-half-down", {"a": D, "b": H, "c": H}, None, D),
    ("single-component-degraded", {"a": D}, None, D),
]


@pytest.mark.parametrize(
    ("levels", "critical", "level"),
    [c[1:] for c in SYSTEM_CASES],
    ids=[c[0] for c in SYSTEM_CASES],
)
def test_system_level(levels: dict, critical: set | None, level: Level) -> None:
    assert system_level(levels, critical) == level


def test_system_health_keeps_the_components_and_reasons() -> None:
    ipc = component_health(HealthInputs(component="ipc", breaker_state="OPEN", trips=1))
    sh = system_health({"ipc": ipc, "ml-inference": H, "doc-processing": H})
    assert sh.level == D
    assert sh.reasons == ("ipc: Degraded",)
    assert sh.to_dict() == {
        "level": "Degraded",
        "reasons": ["ipc: Degraded"],
        "components": {
            "ipc": {"level": "Degraded", "reasons": ["breaker OPEN"]},
            "ml-inference": {"level": "Healthy", "reasons": []},
            "doc-processing": {"level": "Healthy", "reasons": []},
        },
    }
    assert isinstance(sh.components["ml-inference"], ComponentHealth)
