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
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from typing import Any

from prefect_ft.breaker import CircuitBreaker
from prefect_ft.core.recovery import (
    Alert,
    RecoveryConfig,
    Refuse,
    Run,
    Wait,
    plan,
    record_outcome,
    rollback_for,
)
from prefect_ft.core.recovery_limits import ValidationTally, down_is_final
from prefect_ft.exceptions import ConfigurationError, ControlError, StoreUnavailableError
from prefect_ft.ops.logs import bind_ids
from prefect_ft.recovery.actions import arun_strategy
from prefect_ft.recovery.client import connect
from prefect_ft.recovery.control import one_line
from prefect_ft.recovery.events import emit_recovery
from prefect_ft.recovery.observe import observe_recovery
from prefect_ft.recovery.options import RecoveryOptions, aload_spec, check_request
from prefect_ft.recovery.records import acquire_slot, load_state, release_slot, save_state
from prefect_ft.recovery.report import Attempt, RecoveryReport
from prefect_ft.stores.offloop import off_loop

__all__ = ["RecoveryOptions", "arecover", "check_request"]


class _Run:
    """One recovery run's context: what every step needs, in one place."""

    def __init__(self, report: RecoveryReport, spec: Any, options: RecoveryOptions) -> None:
        self.report, self.spec, self.options = report, spec, options
        self.component = report.component
        self.cfg: RecoveryConfig = spec.recovery.to_config() if spec.recovery else RecoveryConfig()
        self.validation_timeout = options.validation_timeout_seconds or (
            spec.recovery.health_check_timeout_seconds if spec.recovery else 30.0
        )
        need = (options.checks - 1) * options.check_interval_seconds
        if self.validation_timeout <= need:
            raise ConfigurationError(
                f"health_check_timeout_seconds ({self.validation_timeout:g} s) must exceed "
                f"(checks - 1) x check_interval_seconds ({need:g} s), or validation can never pass"
            )
        store = options.store if options.store is not None else spec.breaker.store_url
        self.breaker = CircuitBreaker(
            spec.breaker.to_config(self.component),
            store=store,
            clock=options.clock,
            refresh_seconds=None,
        )
        self.store = self.breaker.store
        self.client = connect(spec.control_endpoint, timeout=options.action_timeout_seconds)
        # a slot outlives one attempt: two calls, the validation and the longest backoff
        self.lease_seconds = (
            2 * options.action_timeout_seconds + self.validation_timeout + self.cfg.cap_seconds + 30
        )

    def now(self) -> float:
        # the breaker's local estimate of the store clock: no round trip (Redis TIME) that
        # would block the event loop on every tick of the validation loop
        return self.breaker.now()

    def emit(self, kind: str, phase: str, payload: dict[str, Any]) -> None:
        name = self.options.emit(kind, self.component, self.report.recovery_id, phase, payload)
        self.report.events.append(name or f"prefect-ft.recovery.{kind} (not sent)")
        # alerts go out as events too: only when this run's events really go out
        alert = self.options.emit is emit_recovery
        observe_recovery(kind, self.component, self.report.recovery_id, self.store, payload, alert)

    async def validate(self, attempt: Attempt) -> bool:
        tally = ValidationTally(
            self.now(),
            required=self.options.checks,
            interval_seconds=self.options.check_interval_seconds,
            timeout_seconds=self.validation_timeout,
            down_is_final=down_is_final(attempt.strategy),
        )
        why: str | None = None
        while tally.verdict(self.now()) == "pending":
            wait = tally.next_check_at - self.now()
            if wait > 0:
                await self.options.sleep(min(wait, max(0.0, tally.deadline - self.now())))
                continue
            left = max(0.05, tally.deadline - self.now())
            down = False
            try:
                answer = await asyncio.wait_for(self.client.ahealth(deep=True), left)
                ok = answer.get("healthy") is True
                why = why if ok else str(answer.get("reason") or "unhealthy")
                # a supervisor's "the process is not running" (control.py: `running`)
                down = answer.get("running") is False
            except ControlError as exc:
                ok, why = False, exc.reason
            except TimeoutError:
                ok, why = False, "health check timed out"
            tally.add(ok, self.now(), down=down)
        attempt.checks = tally.checks
        attempt.validation = tally.verdict(self.now())
        if attempt.validation != "passed":  # the last reason it gave, for the one-line message
            attempt.error = f"unhealthy: {one_line(why or 'no healthy answer in time')}"
        return attempt.validation == "passed"

    async def attempt(self, decision: Run) -> bool:
        started = self.now()
        attempt = Attempt(decision.strategy, decision.phase, decision.attempt, started)
        self.report.attempts.append(attempt)
        await off_loop(save_state, self.store, decision.state)
        self.emit(
            "started",
            decision.phase,
            {
                "strategy": decision.strategy,
                "attempt": decision.attempt,
                "reason": self.report.reason,
            },
        )
        action = None
        try:
            action = await arun_strategy(self.client, decision.strategy)
            attempt.request, attempt.answer = action.request, action.answer
            ok = await self.validate(attempt)
        except ControlError as exc:
            attempt.error, ok = exc.reason, False
        except Exception as exc:  # a broken component handler must not leave the breaker stuck
            attempt.error, ok = one_line(exc), False
        state = record_outcome(decision.state, ok, self.now(), self.options.rng.random(), self.cfg)
        await off_loop(save_state, self.store, state)
        if ok:
            await off_loop(self.breaker.mark_recovered)
            attempt.breaker = self.breaker.state
            attempt.seconds = self.now() - started
            self.emit(
                "succeeded",
                decision.phase,
                {"strategy": decision.strategy, "checks": attempt.checks},
            )
            return True
        if (
            action is not None
            and action.undo is not None
            and rollback_for(decision.strategy, self.cfg)
        ):
            try:
                await action.undo()
                attempt.rollback = f"done: {action.undo_request}"
            except ControlError as exc:
                attempt.rollback = f"failed: {exc.reason}"
        delay = max(0.0, state.next_allowed_at - self.now())
        attempt.backoff_seconds = delay
        # longer than usual: what is left of the open time plus the backoff, at least the base
        await off_loop(self.breaker.refresh)
        left = max(0.0, self.breaker.record.open_until - self.breaker.now())
        await off_loop(self.breaker.mark_recovery_failed, left + max(delay, self.cfg.base_seconds))
        attempt.breaker = self.breaker.state
        attempt.seconds = self.now() - started
        self.emit("failed", decision.phase, {
            "strategy": decision.strategy, "reason": attempt.error or f"validation {attempt.validation}",
            "rollback": attempt.rollback, "next_attempt_in": delay,
        })  # fmt: skip
        # the move to the operator is announced once, by the Alert that plan() answers next
        if state.phase != decision.state.phase and state.phase_name != "operator":
            self.emit(
                "escalated",
                state.phase_name,
                {"from_phase": decision.phase, "to_phase": state.phase_name},
            )
        return False

    async def loop(self, strategy: str | None, failure_type: str | None) -> None:
        report, deadline = self.report, self.now() + self.options.max_run_seconds
        while True:
            state = await off_loop(load_state, self.store, self.component)
            decision = plan(state, failure_type, self.cfg, self.now())
            if isinstance(decision, Refuse):
                report.finish("refused" if state.alerted else "failed", decision.reason)
                return
            if isinstance(decision, Alert):
                await off_loop(save_state, self.store, decision.state)
                report.alerted = True
                self.emit(
                    "escalated",
                    "operator",
                    {
                        "from_phase": "long-term",
                        "to_phase": "operator",
                        "alert": True,
                        "reason": decision.reason,
                    },
                )
                report.finish("failed", decision.reason)
                return
            if isinstance(decision, Wait):
                if decision.until > deadline:
                    report.finish(
                        "failed",
                        f"{decision.reason}; next attempt at store time {decision.until:.1f}, after this run's {self.options.max_run_seconds:g} s",
                    )
                    return
                await self.options.sleep(max(0.0, decision.until - self.now()))
                continue
            if strategy is not None:
                decision = replace(
                    decision,
                    strategy=strategy,
                    state=replace(decision.state, last_strategy=strategy),
                )
            await off_loop(
                acquire_slot,
                self.store,
                self.component,
                self.lease_seconds,
                self.options.max_total,
                True,
            )
            if await self.attempt(decision):
                report.finish(
                    "succeeded",
                    f"{self.component} recovered by {decision.strategy} ({decision.phase} phase); breaker {self.breaker.state}",
                )
                return
            if strategy is not None:
                last = report.attempts[-1]
                report.finish(
                    "failed",
                    f"{self.component}: {decision.strategy} failed ({last.error or 'validation ' + last.validation}); breaker {self.breaker.state} for {last.backoff_seconds:.1f} s",
                )
                return


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
