"""What a recovery run tells operations: health notes, Prometheus counts and alerts.

Each recovery event also notes the component's latest recovery in the store (so `/health`,
`prefect-ft status` and the dashboard in every process see a running or failed recovery), counts
a finished attempt in `prefect_ft_recovery_total`, and turns a failure into an alert through the
duplicate/rate gate of `prefect_ft.ops.alerts`. Best effort like the events themselves: nothing
here ever fails the recovery.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect_ft.stores.base import BreakerStore

__all__ = ["observe_recovery"]

log = logging.getLogger("prefect_ft.recovery.observe")
_STATUS = {"started": "running", "succeeded": "succeeded", "failed": "failed"}


def observe_recovery(
    kind: str,
    component: str,
    recovery_id: str,
    store: BreakerStore,
    payload: dict[str, Any],
    alert: bool = True,
) -> None:
    """Feed one `prefect-ft.recovery.<kind>` to health notes, metrics and alerts. Never raises."""
    status = _STATUS.get(kind)
    if status is None:
        return
    strategy = str(payload.get("strategy", ""))
    try:
        from prefect_ft.ops import metrics
        from prefect_ft.ops.alerts import alert_on
        from prefect_ft.ops.view import note_recovery

        note_recovery(store, component, status, strategy, recovery_id)
        if kind != "started":
            metrics.record_recovery(component, strategy or "none", kind)
        if alert and kind == "failed":
            alert_on(f"prefect-ft.recovery.{kind}", component, payload, store=store)
    except Exception:  # operations views are best effort: never fail the recovery they describe
        log.debug("observing recovery %s of %s failed", kind, component, exc_info=True)
