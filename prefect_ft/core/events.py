"""Events that decisions return; adapters turn them into Prefect events, metrics and logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BreakerEvent", "EventKind"]

EventKind = Literal[
    "opened",
    "half-opened",
    "recovering",
    "closed",
    "forced-open",
    "disabled",
    "metrics-only",
    "overlay-cleared",
    "rejected",
]


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One thing that happened to a breaker.

    Attributes:
        kind: what happened (DESIGN §6 names: `prefect-ft.breaker.<kind>`).
        from_state: the effective state before.
        to_state: the effective state after.
        at: when, in the store clock.
        reason: a short human explanation (e.g. "5 consecutive failures").
        open_seconds: for `opened`, how long the breaker stays open.
        remote: the transition was made by another process and observed here.
    """

    kind: EventKind
    from_state: str
    to_state: str
    at: float
    reason: str = ""
    open_seconds: float | None = None
    remote: bool = False
