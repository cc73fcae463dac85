"""How long a breaker stays open: Envoy's ejection time, base x growth per trip, jitter, a cap.

The trip count decays while the breaker is healthy, so a dependency that failed once last week
starts again from `open_seconds`.
"""

from __future__ import annotations

import math

__all__ = ["decayed_trips", "open_duration"]


def decayed_trips(trips: int, closed_at: float, now: float, decay_seconds: float) -> int:
    """Consecutive trips still remembered after `now - closed_at` healthy seconds."""
    if trips <= 0 or closed_at <= 0 or decay_seconds <= 0:
        return max(trips, 0)
    healthy = max(0.0, now - closed_at)
    return max(0, trips - int(healthy // decay_seconds))


def open_duration(
    base: float,
    multiplier: float,
    cap: float,
    jitter: float,
    trips: int,
    u: float,
    override: float | None = None,
) -> float:
    """Seconds to stay open on the `trips`-th consecutive trip (1-based).

    Args:
        base: `open_seconds` of the first trip.
        multiplier: growth per further consecutive trip.
        cap: `max_open_seconds`.
        jitter: fraction of the duration added or removed at random (0 = none).
        trips: consecutive trips, counting this one.
        u: a uniform number in [0, 1) from the caller (the core draws no randomness).
        override: a duration the failing result asked for (Retry-After); wins when given,
            capped at `cap`. A non-finite one (inf, nan) is ignored: it must never be stored.
    """
    if override is not None and math.isfinite(override):
        return min(cap, max(0.0, override))
    d = min(cap, base * multiplier ** max(0, trips - 1))
    d += d * jitter * (2.0 * u - 1.0)
    return min(cap, max(0.0, d))
