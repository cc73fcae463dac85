"""What the demo's detection pass sees: the injected faults as events, then the detection flow's
alarms over the run's task-run history (scored against the faults by `report.score_alarms`)."""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

__all__ = ["detect_alarms", "emit_fault_events"]


def detect_alarms(t_start: float) -> list[dict[str, Any]]:
    from prefect_ft.history.detection_flow import detect

    time.sleep(3.0)  # task-run history reaches the API about a second after the events
    summary = detect(
        lag_s=1.0,
        max_age_s=time.time() - t_start + 60,
        emit=True,
        artifact_key="ran-demo-detection",
        state_key=f"ran-demo:{t_start:.0f}",
    )
    return summary["alarms"]


def emit_fault_events(records: list[dict[str, Any]]) -> None:
    from datetime import datetime

    from prefect.events import emit_event

    for rec in records:
        if rec["start"] is None:
            continue
        emit_event(
            "prefect-ft.fault.injected",
            occurred=datetime.fromtimestamp(rec["start"], UTC),
            resource={
                "prefect.resource.id": f"prefect-ft.component.{rec['component']}",
                "prefect-ft.fault.kind": rec["kind"],
            },
            payload=rec,
        )
