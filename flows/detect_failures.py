"""Deployable entrypoint: detect fault patterns in task-run history and announce them.

Run it on a schedule (every minute or few): each run reads the task runs that ended since the
last one, runs the detectors, emits one `prefect-ft.fault.detected` event per new alarm (resource
`prefect-ft.component.<name>`), writes a markdown artifact and saves the detectors' state. The
work is `prefect_ft.history.detection_flow.detect`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from prefect_ft.history.detection_flow import DEFAULT_STATE_KEY, detect

__all__ = ["detect_failures"]


@flow(name="detect-failures")
def detect_failures(
    components: list[str] | None = None,
    edges: list[list[str]] | None = None,
    state_key: str = DEFAULT_STATE_KEY,
    store_url: str | None = None,
    lag_seconds: float = 5.0,
    max_age_seconds: float = 6 * 3600.0,
    until: float | None = None,
    page_limit: int = 200,
    artifact_key: str | None = "prefect-ft-detection",
    emit_events: bool = True,
    max_retried_runs: int = 200,  # prefect_ft.history.MAX_RETRIED_RUNS, as a literal for AST parsing
) -> dict[str, Any]:
    """Detect fault patterns in the history since the last run.

    Args:
        components: component names (default: the RAN pipeline's four).
        edges: dependency edges `[upstream, downstream]` for cascade detection.
        state_key: store key of the detectors' state and history watermark.
        store_url: breaker store URL (default `PREFECT_FT_STORE_URL`).
        lag_seconds: history lags events; read only task runs that ended this long ago.
        max_age_seconds: how far back the very first run reads.
        until: end of the window as epoch seconds (default: now - lag_seconds).
        page_limit: task runs per API call (at most 200).
        artifact_key: key of the markdown report artifact; empty for none.
        emit_events: emit `prefect-ft.fault.detected` events.
        max_retried_runs: retried task runs per run whose failed attempts are read (one API
            call each); the rest are reported as skipped input.

    Returns:
        The summary of `prefect_ft.history.detection_flow.detect`.
    """
    return detect(
        components,
        edges,
        state_key=state_key,
        store=store_url,
        lag_s=lag_seconds,
        max_age_s=max_age_seconds,
        until=until,
        page_limit=page_limit,
        artifact_key=artifact_key or None,
        emit=emit_events,
        max_retried_runs=max_retried_runs,
    )
