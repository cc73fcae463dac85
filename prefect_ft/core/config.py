"""`BreakerConfig`: one breaker's policy, validated when it is built, never on first use."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from prefect_ft.core.classify import OutcomeClassifier
from prefect_ft.core.conditions import ConsecutiveFailures, TripCondition
from prefect_ft.core.validation import require
from prefect_ft.core.windows import CountWindow, TimeWindow

__all__ = [
    "MAX_COUNT_WINDOW_CALLS",
    "MAX_HALF_OPEN_CALLS",
    "MAX_MINIMUM_CALLS",
    "MAX_PROBE_INTERVAL_SECONDS",
    "MAX_REPLAY_CONCURRENCY",
    "MAX_TIME_WINDOW_SECONDS",
    "BreakerConfig",
]

# Upper bounds of every size, so a typo cannot allocate a process's memory: a window allocates
# its whole size up front (a count window 2 bytes per call, about 20 KB at the bound; a time
# window about 100 bytes per second, about 0.35 MB at the bound), once per breaker per process.
# The blocks declare the same numbers (`le=`), so the Prefect UI form refuses them too.
MAX_COUNT_WINDOW_CALLS = 10_000
MAX_TIME_WINDOW_SECONDS = 3_600
MAX_HALF_OPEN_CALLS = 100  # each probe is a lease in the shared record
MAX_MINIMUM_CALLS = 10_000  # more than the largest count window could ever hold
MAX_PROBE_INTERVAL_SECONDS = 3_600
MAX_REPLAY_CONCURRENCY = 64  # replayer threads per breaker queue


def _num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _int_in(x: object, low: int, high: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """A circuit breaker's policy.

    Attributes:
        name: the breaker's name (also its key in the shared store).
        trip: when CLOSED trips to OPEN; compose with `|` and `&`.
        window_type: "count" (last `window_size` calls) or "time" (last `window_size` seconds).
        window_size: calls (at most 10,000) or seconds (at most 3,600) in the window used by
            rate conditions.
        open_seconds: how long the first trip stays open.
        open_multiplier: growth of the open time per further consecutive trip (>= 1).
        max_open_seconds: cap on the open time (default: the larger of 600 s and 10 x open_seconds),
            a Retry-After hint included.
        open_jitter: fraction of the open time randomised, in [0, 1).
        decay_seconds: each this many healthy seconds forget one consecutive trip
            (default: `max_open_seconds`).
        half_open_calls: probes admitted in HALF_OPEN across all processes (K, at most 100).
        probe_ttl_seconds: a probe lease expires after this long (a crashed prober frees it);
            HALF_OPEN lasts at most (half_open_calls + 1) x probe_ttl_seconds, then reopens.
        recovery_seconds: length of the RECOVERY ramp; 0 closes straight after the probes.
        recovery_min_fraction: share of calls admitted at the start of the ramp.
        recovery_aggression: curve of the ramp (1 = linear, > 1 = faster start).
        recovery_failure_rate: failure rate (%) during the ramp that reopens the breaker.
        recovery_minimum_calls: calls in the ramp before its failure rate is judged (at most
            10,000).
        classifier: which exceptions are failures, ignored, or successes.
        health_check: a cheap check of the dependency (its deep `/health`), called with no
            arguments; healthy when it returns anything but False (or a dict whose "healthy"
            is false) without raising. Needed by the two fields below (`core.probe`).
        probe_interval_seconds: while OPEN, run `health_check` this often; a pass moves OPEN ->
            HALF_OPEN at once (Envoy active health checking), a failure keeps it OPEN. None: off.
        probe_confirm_failures: while CLOSED, after this many consecutive failures run
            `health_check` once; if it fails, open now instead of waiting for the trip
            condition (hard-down evidence). None: off.
        probe_backoff: while OPEN, each failed check multiplies the interval to the next one by
            this (>= 1; 1 = a fixed interval), up to `probe_max_interval_seconds`; a new open
            period starts again at `probe_interval_seconds`. Fewer requests to a component that
            stays down; its return is then noticed by a readiness announcement (`ready()`).
        probe_max_interval_seconds: cap on the backed-off interval (default: 16 x
            `probe_interval_seconds`).
        ready_recovery_seconds: the RECOVERY ramp after a verified readiness (the component
            announced it is ready, `announce_ready`, and the health check then passed), instead
            of `recovery_seconds`; 0 closes after the half-open probes. None: `recovery_seconds`.
        replay_concurrency: dead letters `replay()` runs at once while CLOSED (1 to 64); while
            HALF_OPEN only the probes, in RECOVERY the ramp's share of it (`core.replay_pace`).
    """

    name: str
    trip: TripCondition = field(default_factory=lambda: ConsecutiveFailures(5))
    window_type: str = "count"
    window_size: int = 100
    open_seconds: float = 60.0
    open_multiplier: float = 2.0
    max_open_seconds: float | None = None
    open_jitter: float = 0.0
    decay_seconds: float | None = None
    half_open_calls: int = 1
    probe_ttl_seconds: float = 30.0
    recovery_seconds: float = 0.0
    recovery_min_fraction: float = 0.1
    recovery_aggression: float = 1.0
    recovery_failure_rate: float = 50.0
    recovery_minimum_calls: int = 5
    classifier: OutcomeClassifier = field(default_factory=OutcomeClassifier)
    health_check: Callable[[], object] | None = None
    probe_interval_seconds: float | None = None
    probe_confirm_failures: int | None = None
    probe_backoff: float = 1.0
    probe_max_interval_seconds: float | None = None
    ready_recovery_seconds: float | None = None
    replay_concurrency: int = 4

    def __post_init__(self) -> None:
        require(
            isinstance(self.name, str) and self.name.strip() != "",
            "name",
            "a non-empty string",
            self.name,
        )
        require(isinstance(self.trip, TripCondition), "trip", "a TripCondition", self.trip)
        require(
            self.window_type in ("count", "time"),
            "window_type",
            "'count' or 'time'",
            self.window_type,
        )
        ws = self.window_size
        top, unit = (
            (MAX_COUNT_WINDOW_CALLS, "calls for a count window")
            if self.window_type == "count"
            else (MAX_TIME_WINDOW_SECONDS, "seconds for a time window")
        )
        require(_int_in(ws, 1, top), "window_size", f"an integer in [1, {top}] {unit}", ws)
        require(
            _num(self.open_seconds) and self.open_seconds > 0,
            "open_seconds",
            "> 0 seconds",
            self.open_seconds,
        )
        require(
            _num(self.open_multiplier) and self.open_multiplier >= 1,
            "open_multiplier",
            ">= 1",
            self.open_multiplier,
        )
        cap = self.max_open_seconds
        ok = cap is None or (_num(cap) and cap >= self.open_seconds)
        require(ok, "max_open_seconds", f">= open_seconds ({self.open_seconds}) or None", cap)
        require(
            _num(self.open_jitter) and 0 <= self.open_jitter < 1,
            "open_jitter",
            "in [0, 1)",
            self.open_jitter,
        )
        d = self.decay_seconds
        require(d is None or (_num(d) and d > 0), "decay_seconds", "> 0 seconds or None", d)
        k = self.half_open_calls
        top = MAX_HALF_OPEN_CALLS
        require(_int_in(k, 1, top), "half_open_calls", f"an integer in [1, {top}]", k)
        t = self.probe_ttl_seconds
        require(_num(t) and t > 0, "probe_ttl_seconds", "> 0 seconds", t)
        r = self.recovery_seconds
        require(_num(r) and r >= 0, "recovery_seconds", ">= 0 seconds", r)
        f = self.recovery_min_fraction
        require(_num(f) and 0 < f <= 1, "recovery_min_fraction", "in (0, 1]", f)
        a = self.recovery_aggression
        require(_num(a) and a > 0, "recovery_aggression", "> 0", a)
        p = self.recovery_failure_rate
        require(_num(p) and 0 < p <= 100, "recovery_failure_rate", "in (0, 100] percent", p)
        m = self.recovery_minimum_calls
        top = MAX_MINIMUM_CALLS
        require(_int_in(m, 1, top), "recovery_minimum_calls", f"an integer in [1, {top}]", m)
        h = self.health_check
        require(h is None or callable(h), "health_check", "a callable or None", h)
        pi = self.probe_interval_seconds
        ok = pi is None or (_num(pi) and 0 < pi <= MAX_PROBE_INTERVAL_SECONDS)
        require(ok, "probe_interval_seconds", f"in (0, {MAX_PROBE_INTERVAL_SECONDS}] seconds or None", pi)  # fmt: skip
        c = self.probe_confirm_failures
        ok = c is None or _int_in(c, 1, MAX_MINIMUM_CALLS)
        require(ok, "probe_confirm_failures", f"an integer in [1, {MAX_MINIMUM_CALLS}] or None", c)
        b = self.probe_backoff
        require(_num(b) and 1 <= b <= 100, "probe_backoff", "in [1, 100]", b)
        pm = self.probe_max_interval_seconds
        ok = pm is None or (_num(pm) and 0 < pm <= MAX_PROBE_INTERVAL_SECONDS and (pi is None or pm >= pi))  # fmt: skip
        require(ok, "probe_max_interval_seconds", f">= probe_interval_seconds and <= {MAX_PROBE_INTERVAL_SECONDS} seconds, or None", pm)  # fmt: skip
        rr = self.ready_recovery_seconds
        ok = rr is None or (_num(rr) and rr >= 0)
        require(ok, "ready_recovery_seconds", ">= 0 seconds or None", rr)
        n = self.replay_concurrency
        top = MAX_REPLAY_CONCURRENCY
        require(_int_in(n, 1, top), "replay_concurrency", f"an integer in [1, {top}]", n)

    @property
    def probing(self) -> bool:
        """Active health checking is on: a check to run and a reason to run it."""
        wanted = self.probe_interval_seconds is not None or self.probe_confirm_failures is not None
        return self.health_check is not None and wanted

    @property
    def slow_call_seconds(self) -> float | None:
        """The slow-call threshold the trip conditions need, if any."""
        return self.trip.slow_call_seconds()

    @property
    def open_cap_seconds(self) -> float:
        """`max_open_seconds`, or its default."""
        if self.max_open_seconds is not None:
            return self.max_open_seconds
        return max(600.0, 10 * self.open_seconds)

    @property
    def effective_decay_seconds(self) -> float:
        return self.decay_seconds if self.decay_seconds is not None else self.open_cap_seconds

    def new_window(self) -> CountWindow | TimeWindow:
        """A fresh window of this config's type and size."""
        return (
            CountWindow(self.window_size)
            if self.window_type == "count"
            else TimeWindow(self.window_size)
        )
