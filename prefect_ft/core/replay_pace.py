"""How many dead letters a replayer may run at once: the breaker's state decides, not a guess.

A backlog replayed one call at a time refills throughput slowly after an outage (a 10 ms call
behind a claim and a done write each: about 60 calls a second, whatever the component can take),
yet a backlog fired all at once at a component that has just come back is the thundering herd
the breaker exists to prevent. So the replayer's parallelism follows the breaker:

- CLOSED (or an overlay that lets every call through): `concurrency`, the policy's
  `replay_concurrency` (default 4) or `replay(concurrency=N)`;
- OPEN: none until its open time is up, then one: the call that half-opens it is the probe;
- HALF_OPEN: the half-open probes only (`half_open_calls`, at most `concurrency`): the
  component has not answered a work call yet;
- RECOVERY: the ramp's share of `concurrency`, at least one (`core.ramp`): a ramp of 2 s from
  10 % admits 1 of 4 at first and all 4 at its end. The ramp still decides each call too;
- FORCED_OPEN: none.

The bulkhead, when the component has one, bounds it again (`bulkhead`, its `max_concurrent`):
replayed calls take the same permits as live ones, so together they never exceed it.

Pure: time is passed in; `prefect_ft.deadletter.pacer` drives it.
"""

from __future__ import annotations

from prefect_ft.core import machine
from prefect_ft.core.config import MAX_REPLAY_CONCURRENCY, BreakerConfig
from prefect_ft.core.ramp import recovery_fraction
from prefect_ft.core.states import CLOSED, HALF_OPEN, OPEN, BreakerRecord

__all__ = ["check_concurrency", "replay_slots"]


def check_concurrency(n: object, field: str = "concurrency") -> int:
    """`n` when it is an integer in [1, MAX_REPLAY_CONCURRENCY]; else ValueError naming `field`."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPLAY_CONCURRENCY:
        raise ValueError(f"{field} must be an integer in [1, {MAX_REPLAY_CONCURRENCY}] (got {n!r})")
    return n


def replay_slots(
    rec: BreakerRecord,
    cfg: BreakerConfig,
    now: float,
    *,
    concurrency: int | None = None,
    bulkhead: int | None = None,
) -> int:
    """Replayed calls that may be in flight at `now` (0: wait for the breaker).

    Args:
        concurrency: the replay's own limit (default: `cfg.replay_concurrency`).
        bulkhead: the component's bulkhead size, if it has one.
    """
    n = cfg.replay_concurrency if concurrency is None else check_concurrency(concurrency)
    if bulkhead is not None:
        n = max(1, min(n, bulkhead))
    if rec.overlay == "FORCED_OPEN":
        return 0
    if rec.overlay is not None or rec.state == CLOSED:
        return n
    if rec.state == OPEN:
        return 0 if now < rec.open_until else 1
    if rec.state == HALF_OPEN:
        return min(n, cfg.half_open_calls)
    window = machine.ramp_seconds(rec, cfg)  # RECOVERY
    elapsed = now - rec.recovery_started_at
    f = recovery_fraction(elapsed, window, cfg.recovery_min_fraction, cfg.recovery_aggression)
    return max(1, min(n, int(f * n + 1e-9)))
