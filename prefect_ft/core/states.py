"""Breaker state names and the record that a store shares between processes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "OVERLAYS",
    "RECOVERY",
    "STATES",
    "BreakerRecord",
    "OverlayName",
    "StateName",
]

StateName = Literal["CLOSED", "OPEN", "HALF_OPEN", "RECOVERY"]
OverlayName = Literal["FORCED_OPEN", "DISABLED", "METRICS_ONLY"]

CLOSED: StateName = "CLOSED"
OPEN: StateName = "OPEN"
HALF_OPEN: StateName = "HALF_OPEN"
RECOVERY: StateName = "RECOVERY"
STATES: tuple[StateName, ...] = (CLOSED, OPEN, HALF_OPEN, RECOVERY)
OVERLAYS: tuple[OverlayName, ...] = ("FORCED_OPEN", "DISABLED", "METRICS_ONLY")


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """Everything a breaker's decisions depend on that must be shared across processes.

    Times are in the store's clock (seconds). `probes` holds the half-open leases as
    `(holder, expires_at)` pairs: a prober that dies loses its lease at `expires_at`.
    `ready_at` is when the component last announced it is ready (`core.readiness`) and
    `ready_verified` whether a health check confirmed it; both count only for the open period
    they fall in (`ready_at >= opened_at`).
    """

    state: StateName = CLOSED
    overlay: OverlayName | None = None
    consecutive_failures: int = 0
    trips: int = 0
    opened_at: float = 0.0
    open_until: float = 0.0
    closed_at: float = 0.0
    probes: tuple[tuple[str, float], ...] = ()
    probe_successes: int = 0
    recovery_started_at: float = 0.0
    recovery_calls: int = 0
    recovery_failures: int = 0
    ready_at: float | None = None
    ready_verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the stores keep records as text)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["probes"] = [list(p) for p in self.probes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BreakerRecord:
        """Inverse of `to_dict`; unknown keys (a newer writer) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["probes"] = tuple((str(h), float(t)) for h, t in kwargs.get("probes", ()))
        return replace(cls(), **kwargs)

    @property
    def effective_state(self) -> str:
        """The overlay when one is set, else the state (what operators see)."""
        return self.overlay or self.state
