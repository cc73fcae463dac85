"""Limits around a recovery: how many may run at once, and when a recovered component counts as healthy.

Pure: `now` is a parameter. `RecoverySlots` is a frozen, JSON-serialisable record the driver
keeps in the store and updates with `cas`, so two processes that start a recovery of the same
component at once cannot both win. `ValidationTally` is a small accumulator owned by one
validation loop (like the sliding windows), so it mutates in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["Grant", "RecoverySlots", "ValidationTally", "Verdict", "down_is_final"]

Verdict = Literal["passed", "failed", "pending"]


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer of `RecoverySlots.acquire`: `granted`, the slots to store, and why not."""

    granted: bool
    slots: RecoverySlots
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RecoverySlots:
    """Running recoveries as `(component, expires_at)` leases: one per component, `max_total` in all.

    A lease expires so a recovery whose process died frees its slot; the driver takes it with a
    TTL longer than one attempt (action + validation timeout).
    """

    max_total: int = 2
    leases: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        n = self.max_total
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
            raise ValueError(f"max_total must be an int in 1..1000 (got {n!r})")

    def live(self, now: float) -> tuple[tuple[str, float], ...]:
        """The leases not yet expired at `now`."""
        return tuple(lease for lease in self.leases if lease[1] > now)

    def acquire(self, component: str, now: float, ttl_seconds: float) -> Grant:
        """Take a slot for `component` until `now + ttl_seconds`, or say why not."""
        _positive("ttl_seconds", ttl_seconds)
        if not component:
            raise ValueError("component must be a non-empty name")
        live = self.live(now)
        held = next((lease for lease in live if lease[0] == component), None)
        if held is not None:
            reason = f"a recovery of {component} is already running (its lease ends at {held[1]:g})"
            return Grant(False, self, reason)
        if len(live) >= self.max_total:
            names = ", ".join(lease[0] for lease in live)
            reason = (
                f"{len(live)} recoveries already running ({names}); the limit is {self.max_total}"
            )
            return Grant(False, self, reason)
        return Grant(True, replace(self, leases=(*live, (component, now + ttl_seconds))))

    def release(self, component: str, now: float) -> RecoverySlots:
        """Free `component`'s slot (and drop expired leases)."""
        return replace(self, leases=tuple(x for x in self.live(now) if x[0] != component))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"max_total": self.max_total, "leases": [list(x) for x in self.leases]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecoverySlots:
        """Inverse of `to_dict`."""
        leases = tuple((str(c), float(t)) for c, t in data.get("leases", ()))
        return cls(int(data.get("max_total", 2)), leases)


class ValidationTally:
    """k consecutive successful deep health checks within a timeout (default 3, every 1 s, 30 s).

    `add(ok, now)` records one check: `passed` after `required` successes in a row, `failed`
    once `timeout_seconds` have gone by since `started_at` without that, else `pending`. A failed
    check starts the run of successes over. `next_check_at` spaces checks `interval_seconds` apart.

    A check that found the component's process not running (`down=True`) fails validation at
    once when `down_is_final` (the action taken cannot start a process: see `down_is_final()`):
    waiting out the timeout would only delay the next phase, the restart that can.
    """

    def __init__(
        self,
        started_at: float,
        *,
        required: int = 3,
        interval_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        down_is_final: bool = True,
    ) -> None:
        if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= 100:
            raise ValueError(f"required must be an int in 1..100 (got {required!r})")
        _positive("interval_seconds", interval_seconds)
        _positive("timeout_seconds", timeout_seconds)
        self.started_at = started_at
        self.required = required
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self.down_is_final = down_is_final
        self.consecutive = 0
        self.checks = 0
        self.last_check_at: float | None = None
        self._verdict: Verdict = "pending"

    @property
    def deadline(self) -> float:
        """When validation fails if it has not passed."""
        return self.started_at + self.timeout_seconds

    @property
    def next_check_at(self) -> float:
        """When the next check is due."""
        if self.last_check_at is None:
            return self.started_at
        return self.last_check_at + self.interval_seconds

    def verdict(self, now: float) -> Verdict:
        """The verdict at `now` without a new check (a hung check still times out)."""
        if self._verdict == "pending" and now >= self.deadline:
            self._verdict = "failed"
        return self._verdict

    def add(self, ok: bool, now: float, *, down: bool = False) -> Verdict:
        """Record one deep check that answered at `now` (`down`: it found the process not
        running); a settled verdict never changes."""
        if self._verdict != "pending":
            return self._verdict
        if now > self.deadline:  # an answer after the timeout does not count
            self._verdict = "failed"
            return self._verdict
        self.checks += 1
        self.last_check_at = now
        self.consecutive = self.consecutive + 1 if ok else 0
        if self.consecutive >= self.required:
            self._verdict = "passed"
        elif down and not ok and self.down_is_final:
            self._verdict = "failed"
        return self.verdict(now)


# the strategies that start a component's process: after them a "not running" answer may be
# the process still coming up
_STARTS_PROCESS = frozenset({"graceful-restart"})


def down_is_final(strategy: str) -> bool:
    """Whether a "process not running" answer settles the validation of `strategy`: only a
    restart can bring a dead process back, so after any other action it never will."""
    return strategy not in _STARTS_PROCESS
