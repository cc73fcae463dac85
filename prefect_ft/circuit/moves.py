"""What operators and recoveries do to a breaker: overlays, reset, recovery moves, readiness.

Each is one decision of `core.machine` / `core.readiness` written through the shared store, so
every process sees it. Listeners hear of the transitions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect_ft.core import machine, readiness
from prefect_ft.core.states import BreakerRecord, OverlayName
from prefect_ft.stores.shared_record import BreakerListener

__all__ = ["MovesMixin", "RecoveryMove"]


@dataclass(frozen=True, slots=True)
class RecoveryMove:
    """What `mark_recovered` / `mark_recovery_failed` did: `moved`, the state now, why not.

    Truthy when the breaker moved.
    """

    moved: bool
    state: str
    reason: str = ""

    def __bool__(self) -> bool:
        return self.moved


class MovesMixin:
    """Operator and recovery moves of `CircuitBreaker` (see the module docstring)."""

    # provided by CircuitBreaker
    config: Any
    _record: BreakerRecord
    _window: Any
    _lock: Any
    _prober: Any
    _listeners: list[BreakerListener]

    if TYPE_CHECKING:  # provided by CircuitBreaker and SharedRecordMixin; declared here, not
        # defined, so nothing here shadows them in the class's method order

        state: str

        def refresh(self) -> None: ...

        def _apply(self, op: Callable[[BreakerRecord, float], Any]) -> Any: ...

    # -- admin -------------------------------------------------------------------------------
    def force_open(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, "FORCED_OPEN", n))

    def disable(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, "DISABLED", n))

    def metrics_only(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, "METRICS_ONLY", n))

    def clear_overlay(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, None, n))

    def reset(self, overlay: OverlayName | None = None) -> None:
        """Back to CLOSED with counters cleared (and the window emptied)."""
        if self._window is not None:
            with self._lock:
                self._window.clear()
        self._apply(lambda r, n: machine.set_overlay(r, overlay, n, reset=True))

    # -- recovery (issue 9): the outcome of a recovery moves the breaker ------------------------
    def mark_recovered(self) -> RecoveryMove:
        """A recovery validated the component: OPEN -> HALF_OPEN now, then probes and the ramp.

        Returns whether the breaker moved; it does not when it is not OPEN or an operator's
        overlay is set (a forced open is never overridden), and `reason` says why.
        """
        return self._recovery_move(lambda r, n: machine.mark_recovered(r, self.config, n))

    def mark_recovery_failed(self, open_seconds: float) -> RecoveryMove:
        """A recovery failed: stay OPEN for `open_seconds` from now (longer than usual).

        Raises:
            ValueError: `open_seconds` is not a finite number > 0.
        """
        machine.mark_recovery_failed(self._record, self.config, 0.0, open_seconds)  # validates
        return self._recovery_move(
            lambda r, n: machine.mark_recovery_failed(r, self.config, n, open_seconds)
        )

    def _recovery_move(self, decide: Callable[[BreakerRecord, float], Any]) -> RecoveryMove:
        self.refresh()  # the local view may be older than the outage the recovery answers
        seen: list[tuple[BreakerRecord, Any]] = []

        def op(r: BreakerRecord, n: float) -> Any:
            t = decide(r, n)
            seen.append((r, t))
            return t

        self._apply(op)
        before, t = seen[-1]
        moved = t.record is not before
        reason = "" if moved else (machine.recovery_blocked(before) or "nothing to change")
        return RecoveryMove(moved, self.state, reason)

    def ready(self) -> RecoveryMove:
        """The component announces it is ready (its supervisor restarted it and its deep health
        check passed): an OPEN breaker verifies it with one health check now and half-opens on
        a pass, every process through the store (`prefect_ft.core.readiness`).

        Returns whether the record moved (recorded the announcement, or half-opened when there
        is no health check to verify it); `reason` says why not.
        """
        move = self._recovery_move(lambda r, n: readiness.announce(r, self.config, n))
        if self._prober is not None and readiness.pending(self._record):
            self._prober.poke()  # also when it was already recorded (a repeated announcement)
        return move

    def add_listener(self, listener: BreakerListener) -> None:
        """Call `listener(breaker, event)` on each transition, before the global listeners."""
        self._listeners.append(listener)

    def remove_listener(self, listener: BreakerListener) -> None:
        """Stop calling `listener` (nothing happens when it was not added)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)
