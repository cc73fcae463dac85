"""Deployable recovery flows: `recover` (escalation decides the strategy) and one per strategy.

Triggered by `prefect-ft.breaker.opened` / `prefect-ft.fault.detected` automations (see
`deployments/prefect.yaml`), by the health sweep, or by hand. Each run emits
`prefect-ft.recovery.*`, writes a markdown artifact `recovery-<component>` of what it did, and
ends Failed with a one-line message when recovery failed; a malformed request (an event without
the component, an unknown failure type) fails at once. The work is
`prefect_ft.recovery.executor.arecover`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from prefect_ft.recovery.control import one_line
from prefect_ft.recovery.executor import RecoveryOptions, arecover
from prefect_ft.recovery.report import artifact_key

__all__ = [
    "RecoveryFailed",
    "connection_reset",
    "graceful_restart",
    "model_reload",
    "recover",
    "resource_reallocation",
    "validation_reset",
]


class RecoveryFailed(Exception):
    """The recovery ran and failed (or was refused as malformed); the message is one line."""


async def run_recovery(
    component: str,
    strategy: str | None,
    failure_type: str | None,
    reason: str | None,
    action_timeout_seconds: float,
    check_interval_seconds: float,
    max_run_seconds: float,
    skip_if_closed: bool = False,
) -> dict[str, Any]:
    """The body every recovery flow shares."""
    logger = get_run_logger()
    options = RecoveryOptions(
        action_timeout_seconds=action_timeout_seconds,
        check_interval_seconds=check_interval_seconds,
        max_run_seconds=max_run_seconds,
        skip_if_closed=skip_if_closed,
    )
    try:
        report = await arecover(component, strategy, failure_type, reason, options=options)
    except ValueError as exc:  # malformed request: fail fast, still leave a trace in the UI
        message = one_line(str(exc))
        await acreate_markdown_artifact(
            markdown=f"# Recovery refused\n\nBad request: {message}\n",
            description="prefect-ft recovery: bad request",
        )
        raise RecoveryFailed(f"bad recovery request: {message}") from None
    await acreate_markdown_artifact(
        markdown=report.markdown(),
        key=artifact_key(report.component),
        description=f"prefect-ft recovery of {report.component}: {report.outcome}",
    )
    log = logger.error if report.outcome == "failed" else logger.info
    log("recovery %s of %s: %s", report.outcome, report.component, report.message)
    if report.outcome == "failed":
        raise RecoveryFailed(report.message)
    return report.to_dict()


@flow(name="recover")
async def recover(
    component: str,
    failure_type: str | None = None,
    reason: str | None = None,
    action_timeout_seconds: float = 30.0,
    check_interval_seconds: float = 1.0,
    max_run_seconds: float = 300.0,
    skip_if_closed: bool = False,
) -> dict[str, Any]:
    """Recover `component`; the escalation decides the strategy (immediate, short-, long-term).

    Args:
        component: the component (its ComponentSpec block name).
        failure_type: what failed (e.g. `ConnectionError`); empty for unknown (a breaker trip).
        reason: why recovery was asked for, shown in the artifact and events.
        action_timeout_seconds: timeout of each control call.
        check_interval_seconds: spacing of the validating deep health checks.
        max_run_seconds: the run ends rather than back off past this.
        skip_if_closed: do nothing when the breaker serves again (CLOSED or RECOVERY): the run
            of an opening that arrives after the component recovered (set by the
            `breaker.opened` trigger).
    """
    return await run_recovery(
        component, None, failure_type, reason, action_timeout_seconds, check_interval_seconds,
        max_run_seconds, skip_if_closed,
    )  # fmt: skip


@flow(name="connection-reset")
async def connection_reset(
    component: str,
    reason: str | None = None,
    action_timeout_seconds: float = 30.0,
    check_interval_seconds: float = 1.0,
) -> dict[str, Any]:
    """Reset the component's connections, then validate (one attempt)."""
    return await run_recovery(
        component,
        "connection-reset",
        None,
        reason,
        action_timeout_seconds,
        check_interval_seconds,
        300.0,
    )


@flow(name="model-reload")
async def model_reload(
    component: str,
    reason: str | None = None,
    action_timeout_seconds: float = 30.0,
    check_interval_seconds: float = 1.0,
) -> dict[str, Any]:
    """Reload the component's model, then validate; on failure reload the previous version."""
    return await run_recovery(
        component,
        "model-reload",
        None,
        reason,
        action_timeout_seconds,
        check_interval_seconds,
        300.0,
    )


@flow(name="graceful-restart")
async def graceful_restart(
    component: str,
    reason: str | None = None,
    action_timeout_seconds: float = 30.0,
    check_interval_seconds: float = 1.0,
) -> dict[str, Any]:
    """Drain and restart the component, then validate (one attempt)."""
    return await run_recovery(
        component,
        "graceful-restart",
        None,
        reason,
        action_timeout_seconds,
        check_interval_seconds,
        300.0,
    )


@flow(name="resource-reallocation")
async def resource_reallocation(
    component: str,
    reason: str | None = None,
    action_timeout_seconds: float = 30.0,
    check_interval_seconds: float = 1.0,
) -> dict[str, Any]:
    """More memory, less concurrency, then validate; on failure restore the old budget."""
    return await run_recovery(
        component,
        "resource-reallocation",
        None,
        reason,
        action_timeout_seconds,
        check_interval_seconds,
        300.0,
    )


@flow(name="validation-reset")
async def validation_reset(
    component: str,
    reason: str | None = None,
    action_timeout_seconds: float = 30.0,
    check_interval_seconds: float = 1.0,
) -> dict[str, Any]:
    """Reset the component's validation state, then validate (one attempt)."""
    return await run_recovery(
        component,
        "validation-reset",
        None,
        reason,
        action_timeout_seconds,
        check_interval_seconds,
        300.0,
    )
