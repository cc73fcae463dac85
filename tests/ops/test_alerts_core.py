"""Alert suppression and rate limits (`prefect_ft.core.alerts`), on a fake clock."""

from __future__ import annotations

import math

import pytest

from prefect_ft.core.alerts import Alert, AlertPolicy, AlertState, decide

POLICY = AlertPolicy(dedup_seconds=60.0, rate_limit=3, rate_window_seconds=600.0)


def run(alerts: list[tuple[float, Alert]], policy: AlertPolicy = POLICY) -> list[str]:
    state, out = AlertState(), []
    for now, alert in alerts:
        d, state = decide(state, alert, now, policy)
        out.append(d.action if not d.suppressed_before else f"send+{d.suppressed_before}")
        # the state survives the store's JSON
        state = AlertState.from_dict(state.to_dict())
    return out


def test_a_duplicate_within_the_window_is_suppressed_and_sent_again_after_it() -> None:
    burst = Alert("ipc", "fault", "error-burst:HIGH")
    assert run([(0, burst), (10, burst), (59.9, burst), (60, burst), (61, burst)]) == [
        "send",
        "duplicate",
        "duplicate",
        "send+2",  # the next one sent says two were held back
        "duplicate",
    ]


def test_different_fingerprints_and_components_are_not_duplicates() -> None:
    a = Alert("ipc", "fault", "error-burst:HIGH")
    b = Alert("ipc", "fault", "error-burst:CRITICAL")
    c = Alert("ml-inference", "fault", "error-burst:HIGH")
    d = Alert("ipc", "health", "error-burst:HIGH")
    assert run([(0, a), (1, b), (2, c), (3, d)]) == ["send"] * 4


def test_the_rate_limit_is_per_component_over_a_sliding_window() -> None:
    ipc = [Alert("ipc", "fault", f"p{i}") for i in range(6)]
    other = Alert("quality-validation", "fault", "p0")
    timeline = [(0, ipc[0]), (100, ipc[1]), (200, ipc[2]), (300, ipc[3]), (310, other)]
    timeline += [(599, ipc[4]), (600, ipc[5])]  # the first send leaves the window at 600
    assert run(timeline) == [
        "send",
        "send",
        "send",
        "rate-limited",
        "send",  # another component has its own budget
        "rate-limited",
        "send+2",
    ]


def test_emergencies_are_always_sent_and_do_not_use_the_budget() -> None:
    stop = Alert("prefect-ft", "emergency", "stop")
    fault = [Alert("prefect-ft", "fault", f"p{i}") for i in range(3)]
    out = run([(0, stop), (1, stop), (2, fault[0]), (3, fault[1]), (4, fault[2]), (5, stop)])
    assert out == ["send", "send", "send", "send", "send", "send"]


def test_old_entries_are_forgotten() -> None:
    state = AlertState()
    for i in range(50):
        _, state = decide(state, Alert(f"c{i}", "fault", "x"), float(i), POLICY)
    _, state = decide(state, Alert("c0", "fault", "y"), 10_000.0, POLICY)
    assert set(state.last_sent) == {"c0|fault|y"} and set(state.sent) == {"c0"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dedup_seconds": -1}, r"dedup_seconds must be in \[0.0, 86400.0\] \(got -1\)"),
        ({"dedup_seconds": math.nan}, r"dedup_seconds must be in"),
        ({"rate_limit": 0}, r"rate_limit must be in \[1, 1000\] \(got 0\)"),
        ({"rate_limit": 2.5}, r"rate_limit must be a whole number"),
        ({"rate_window_seconds": "x"}, r"rate_window_seconds must be a number"),
        ({"always": ("panic",)}, r"always: unknown kind 'panic'"),
    ],
)
def test_bad_policies_name_the_field_and_range(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertPolicy(**kwargs)


def test_bad_alerts_name_the_field() -> None:
    with pytest.raises(ValueError, match="kind must be one of fault, health"):
        Alert("ipc", "oops")
    with pytest.raises(ValueError, match="component must be a non-empty name"):
        Alert("", "fault")
