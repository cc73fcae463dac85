"""Outcome classification: is an exception a failure of the dependency, ignored, or a success?

Follows Resilience4j's three classes. Cancellation and interpreter exits are ignored by default:
they say nothing about the dependency, so they must not trip a breaker or use a probe.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from prefect_ft.exceptions import BulkheadFullError

__all__ = ["Outcome", "OutcomeClassifier", "retry_after_of"]

Outcome = Literal["success", "failure", "ignored"]

_ALWAYS_IGNORED: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
)


@dataclass(frozen=True, slots=True)
class OutcomeClassifier:
    """Decide the outcome of a raised exception.

    Order: `predicate` (when it returns an outcome), then `ignore`, then `record`; an exception
    in neither counts as a success (the dependency answered; the caller's code failed).
    A rejection by a guard nested inside the call (`CircuitOpenError`, `BulkheadFullError`) is
    always ignored unless `predicate` decides otherwise: the inner guard refused, the dependency
    was never asked.

    Attributes:
        record: exception types that count as failures.
        ignore: exception types that count neither way (and never use a half-open probe).
        predicate: optional function returning an outcome, or None to fall through.
    """

    record: tuple[type[BaseException], ...] = (Exception,)
    ignore: tuple[type[BaseException], ...] = ()
    predicate: Callable[[BaseException], Outcome | None] | None = None

    def classify(self, exc: BaseException) -> Outcome:
        if self.predicate is not None:
            decided = self.predicate(exc)
            if decided is not None:
                return decided
        if isinstance(exc, (_ALWAYS_IGNORED, self.ignore)):
            return "ignored"
        # a nested breaker's or bulkhead's own rejection: the inner guard refused the call, so
        # it says nothing about this dependency (and must not use up a half-open probe)
        if isinstance(exc, BulkheadFullError) or getattr(exc, "_prefect_ft_rejection", False):
            return "ignored"
        if isinstance(exc, self.record):
            return "failure"
        return "success"


def retry_after_of(exc: BaseException) -> float | None:
    """A Retry-After hint carried by the exception (attribute `retry_after`, seconds), if any.

    Only a finite number >= 0 counts; anything else (inf, nan, a bool, a string) is no hint,
    so the breaker uses its normal open time. The machine caps the hint at `max_open_seconds`.
    """
    value = getattr(exc, "retry_after", None)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and value >= 0:  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    return None
