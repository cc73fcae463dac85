"""Run the recovery of one component: the thin driver around `core.recovery`.

`arecover(component, ...)` loads the component's `ComponentSpec`, takes its recovery slot in the
store (one per component, `max_total` in all; a second recovery of the same component is refused
with the holder named), then loops: ask `core.recovery.plan`, run the strategy through the
control channel, validate with k consecutive deep health checks (`ValidationTally`), roll back on
a failed validation, move the breaker (`mark_recovered` -> HALF_OPEN; `mark_recovery_failed` ->
OPEN for the backoff), store state and stats, and emit `prefect-ft.recovery.*`. `recover` runs
until success, the operator alert, or a backoff that would outlast `max_run_seconds`; a flow for
one strategy (`strategy=`) makes a single attempt. Every failure ends in a report with a one-line
message; nothing here raises for a component's fault, and nothing waits without a timeout.
The steps of a run (plan, act, validate, roll back, move the breaker): `prefect_ft.recovery.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from prefect_ft.exceptions import ConfigurationError, ControlError, StoreUnavailableError
from prefect_ft.ops.logs import bind_ids
from prefect_ft.recovery.control import one_line
from prefect_ft.recovery.options import RecoveryOptions, aload_spec, check_request
from prefect_ft.recovery.records import acquire_slot, load_state, release_slot
from prefect_ft.recovery.report import RecoveryReport
from prefect_ft.recovery.run import _Run
from prefect_ft.stores.offloop import off_loop

__all__ = ["RecoveryOptions", "arecover", "check_request"]


async def arecover(
    component: str,
    strategy: str | None = None,
    failure_type: str | None = None,
    reason: str | None = None,
    *,
    spec: Any = None,
    options: RecoveryOptions | None = None,
) -> RecoveryReport:
    """Recover `component` (see the module docstring); `spec` skips loading the block.

    Raises:
        ValueError: a malformed request (no component, unknown strategy or failure type).
    """
    failure_type = failure_type or None  # an event without a failure type templates ""
    check_request(component, strategy, failure_type)
    options = options or RecoveryOptions()
    report = RecoveryReport(uuid.uuid4().hex[:12], component, failure_type, reason, strategy)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        spec = spec if spec is not None else await aload_spec(component)
        if not spec.control_endpoint:
            # no control channel: no action exists, so this is a skip, not a failure (the
            # breaker's open time and the dead-letter replay bring such a component back)
            report.finish(
                "refused",
                f"component {component!r} has no control_endpoint: nothing to recover",
            )
            return report
        run = _Run(report, spec, options)
    except (LookupError, ConfigurationError, ControlError) as exc:
        report.finish("failed", one_line(str(exc)))
        name = options.emit(
            "failed", component, report.recovery_id, "immediate", {"reason": report.message}
        )
        report.events.append(name or "prefect-ft.recovery.failed (not sent)")
        return report
    report.breaker_before = run.breaker.state
    # serving again (closed, or ramping up): a late run must not restart a healthy component.
    # HALF_OPEN is not serving: its open time may simply have run out while the component is
    # still down (a short open time is shorter than a served run's start on a busy machine)
    if options.skip_if_closed and report.breaker_before in ("CLOSED", "RECOVERY"):
        report.finish(
            "refused",
            f"breaker {component} is {report.breaker_before}: serving again, nothing to "
            "recover (it recovered before this run started)",
        )
        report.breaker_after = report.breaker_before
        return report
    held = False
    try:
        grant = await off_loop(
            acquire_slot, run.store, component, run.lease_seconds, options.max_total
        )
        held = grant.granted
        if held:
            with bind_ids(component=component, recovery_id=report.recovery_id):
                await run.loop(strategy, failure_type)
        else:
            report.finish("refused", grant.reason)
    except StoreUnavailableError as exc:  # the lease expires by itself if it cannot be freed
        report.finish("failed", f"breaker store unavailable: {one_line(exc)}")
        run.emit("failed", "immediate", {"reason": report.message})
    finally:
        if held:
            with contextlib.suppress(StoreUnavailableError):
                await off_loop(release_slot, run.store, component)
            with contextlib.suppress(StoreUnavailableError):
                state = await off_loop(load_state, run.store, component)
                report.stats = [
                    {"strategy": st.strategy, "attempts": st.attempts, "successes": st.successes}
                    for st in state.stats
                ]
        run.breaker.refresh()
        report.breaker_after = run.breaker.state
        report.seconds = loop.time() - started
    return report
