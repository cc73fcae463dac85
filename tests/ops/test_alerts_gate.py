"""The alert gate on the shared store, and which of our events become alerts."""

from __future__ import annotations

from pathlib import Path

from prefect_ft.core.alerts import Alert, AlertPolicy
from prefect_ft.ops.alerts import ALERTS_KEY, alert_for, alert_on, gate
from prefect_ft.stores import shared_store

POLICY = AlertPolicy(dedup_seconds=60.0, rate_limit=2, rate_window_seconds=600.0)


def test_the_gate_keeps_one_budget_in_the_store_for_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    a = Alert("ipc", "fault", "burst:HIGH")
    assert gate(a, 0.0, store=url, policy=POLICY).send
    assert gate(a, 1.0, store=url, policy=POLICY).action == "duplicate"
    second = gate(Alert("ipc", "fault", "x"), 2.0, store=url, policy=POLICY)
    assert second.send and second.suppressed_before == 1  # the duplicate is reported
    assert gate(Alert("ipc", "fault", "y"), 3.0, store=url, policy=POLICY).action == "rate-limited"
    assert shared_store(url).read(ALERTS_KEY).version == 4  # every decision was written
    assert gate(a, 61.0, store=url, policy=POLICY).action == "rate-limited"  # budget still used
    later = gate(a, 700.0, store=url, policy=POLICY)
    assert later.send and later.suppressed_before == 2


def test_an_unreadable_gate_state_never_blocks_an_alert(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    store = shared_store(url)
    store.cas(ALERTS_KEY, 0, "{not json")
    assert gate(Alert("ipc", "fault", "z"), 0.0, store=url, policy=POLICY).send


def test_our_events_map_to_alert_kinds() -> None:
    fault = {"pattern": "error-burst", "severity": "HIGH"}
    assert alert_for("prefect-ft.fault.detected", "ipc", fault) == (
        "fault",
        "error-burst:HIGH",
        "ipc: error-burst fault (HIGH)",
    )
    health = {"to_level": "Degraded", "reasons": ["breaker OPEN"]}
    assert alert_for("prefect-ft.health.changed", "ipc", health) == (
        "health",
        "Degraded",
        "ipc: health Degraded (breaker OPEN)",
    )
    assert alert_for("prefect-ft.recovery.failed", "ipc", {"strategy": "restart"})[0] == (
        "recovery-failed"
    )
    assert alert_for("prefect-ft.breaker.opened", "ipc", {}) is None


def test_the_hook_never_raises(tmp_path: Path) -> None:
    # an unusable store: the alert is lost with a warning, the emitter carries on
    alert_on("prefect-ft.fault.detected", "ipc", {}, store="nosuch://x")
