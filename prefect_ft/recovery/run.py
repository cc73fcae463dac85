"""One recovery run's steps: plan, act through the control channel, validate, roll back, move
the breaker, store the state and emit the events (`_Run`, used by `recovery.executor.arecover`).

`prefect_ft.recovery.executor` checks the request, loads the spec, takes and frees the
component's recovery slot and writes the report's ends; this module holds what happens while
the slot is held. Split from the executor so the run's set-up and its steps each stay one
concern. Decisions stay in `core.recovery` and `core.recovery_limits`.
"""

from __future__ import annotations

import asyncio
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
from prefect_ft.exceptions import ConfigurationError, ControlError
from prefect_ft.recovery.actions import arun_strategy
from prefect_ft.recovery.client import connect
from prefect_ft.recovery.control import one_line
from prefect_ft.recovery.events import emit_recovery
from prefect_ft.recovery.observe import observe_recovery
from prefect_ft.recovery.options import RecoveryOptions
from prefect_ft.recovery.records import acquire_slot, load_state, save_state
from prefect_ft.recovery.report import Attempt, RecoveryReport
from prefect_ft.stores.offloop import off_loop

__all__: list[str] = []  # private to the recovery package: the executor is its entry point


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
