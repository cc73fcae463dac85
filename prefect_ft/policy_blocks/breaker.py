"""`CircuitBreakerPolicy`: the Prefect Block form of one circuit breaker's settings.

Moved out of `prefect_ft.blocks` (the collection entry point, which re-exports it, so
`prefect block register -m prefect_ft.blocks` still registers it) to keep each module one
concern: this block holds every breaker field, its bounds and its cross-field rules, and
`to_config()` builds the frozen core `BreakerConfig`. A Block's slug, schema, checksum and
version do not depend on its module within `prefect_ft` (checked by comparing
`_to_block_schema` before and after the move), so the registered type is unchanged.
"""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, field_validator, model_validator

from prefect_ft.core.conditions import (
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    TripCondition,
)
from prefect_ft.core.config import (
    MAX_COUNT_WINDOW_CALLS,
    MAX_HALF_OPEN_CALLS,
    MAX_MINIMUM_CALLS,
    MAX_PROBE_INTERVAL_SECONDS,
    MAX_REPLAY_CONCURRENCY,
    MAX_TIME_WINDOW_SECONDS,
    BreakerConfig,
)
from prefect_ft.core.validation import STORE_URL_FORMS, STORE_URL_PATTERN, check_store_url
from prefect_ft.exceptions import ConfigurationError

__all__ = ["CircuitBreakerPolicy"]


class CircuitBreakerPolicy(Block):
    """When a component's circuit breaker opens, how long it stays open and how it recovers.

    The breaker trips on `failure_threshold` failures in a row, or, when set, on a failure rate or
    a slow-call rate over a window of calls or seconds. Open time grows by `open_multiplier` per
    further trip up to `max_open_seconds`; `half_open_calls` probes then decide, and a
    `recovery_seconds` ramp admits a rising share of calls before the breaker closes.

    Examples:
        Load a saved policy and build the core configuration:
        ```python
        from prefect_ft.blocks import CircuitBreakerPolicy

        policy = CircuitBreakerPolicy.load("BLOCK_NAME")
        config = policy.to_config("ml-inference")
        ```
    """

    _block_type_name = "FT Circuit Breaker Policy"
    _description = "Trip, open-time and recovery settings of a prefect-ft circuit breaker."

    failure_threshold: int = Field(
        default=5, ge=1, le=MAX_MINIMUM_CALLS, title="Failure threshold (consecutive)",
        description="Consecutive failures that open the circuit.",
    )  # fmt: skip
    failure_rate_threshold: float | None = Field(
        default=None, gt=0, le=100, title="Failure rate threshold (%)",
        description="Failure rate in percent over the window that opens the circuit; empty to disable.",
    )  # fmt: skip
    slow_call_rate_threshold: float | None = Field(
        default=None, gt=0, le=100, title="Slow-call rate threshold (%)",
        description="Share of slow calls in percent over the window that opens the circuit; empty to disable.",
    )  # fmt: skip
    slow_call_seconds: float | None = Field(
        default=None, gt=0, title="Slow call (s)",
        description="A call taking longer than this many seconds counts as slow, even while in flight.",
    )  # fmt: skip
    minimum_calls: int = Field(
        default=10, ge=1, le=MAX_MINIMUM_CALLS, title="Minimum calls",
        description="Calls the window must hold before a rate threshold is judged.",
    )  # fmt: skip
    window_type: Literal["count", "time"] = Field(
        default="count", title="Window type",
        description="Rates are measured over the last N calls (count) or the last N seconds (time).",
    )  # fmt: skip
    window_size: int = Field(
        default=100, ge=1, le=MAX_COUNT_WINDOW_CALLS, title="Window size",
        description=f"Calls (count window, at most {MAX_COUNT_WINDOW_CALLS}) or seconds (time window, at most {MAX_TIME_WINDOW_SECONDS}) over which rates are measured.",
    )  # fmt: skip
    open_seconds: float = Field(
        default=60.0, gt=0, title="Open time (s)",
        description="Seconds the circuit stays open after its first trip.",
    )  # fmt: skip
    open_multiplier: float = Field(
        default=2.0, ge=1, title="Open time multiplier",
        description="Growth of the open time for each further consecutive trip.",
    )  # fmt: skip
    max_open_seconds: float | None = Field(
        default=None, gt=0, title="Maximum open time (s)",
        description="Cap on the open time; empty for the larger of 600 s and 10 x the open time.",
    )  # fmt: skip
    open_jitter: float = Field(
        default=0.0, ge=0, lt=1, title="Open time jitter",
        description="Fraction of the open time that is randomised, from 0 up to but excluding 1.",
    )  # fmt: skip
    half_open_calls: int = Field(
        default=1, ge=1, le=MAX_HALF_OPEN_CALLS, title="Half-open probes",
        description="Trial calls admitted while half-open, across all processes.",
    )  # fmt: skip
    probe_ttl_seconds: float = Field(
        default=30.0, gt=0, title="Probe lease (s)",
        description="Seconds after which an unfinished probe's lease expires, so a crashed prober frees it.",
    )  # fmt: skip
    recovery_seconds: float = Field(
        default=0.0, ge=0, title="Recovery ramp (s)",
        description="Length of the ramp that admits a rising share of calls after the probes; 0 closes at once.",
    )  # fmt: skip
    recovery_min_fraction: float = Field(
        default=0.1, gt=0, le=1, title="Ramp start fraction",
        description="Share of calls admitted at the start of the recovery ramp.",
    )  # fmt: skip
    recovery_aggression: float = Field(
        default=1.0, gt=0, title="Ramp aggression",
        description="Curve of the recovery ramp: 1 is linear, above 1 admits more calls early.",
    )  # fmt: skip
    recovery_failure_rate: float = Field(
        default=50.0, gt=0, le=100, title="Ramp failure rate (%)",
        description="Failure rate in percent during the recovery ramp that reopens the circuit.",
    )  # fmt: skip
    probe_interval_seconds: float | None = Field(
        default=None, gt=0, le=MAX_PROBE_INTERVAL_SECONDS, title="Health check interval (s)",
        description="While open, check the component's deep /health (the component spec's control endpoint) this often; a pass half-opens the circuit at once, a failure keeps it open. Empty: off.",
    )  # fmt: skip
    probe_confirm_failures: int | None = Field(
        default=None, ge=1, le=MAX_MINIMUM_CALLS, title="Confirm after failures",
        description="While closed, after this many consecutive failures check the component's deep /health once; a failed check opens the circuit at once. Empty: off.",
    )  # fmt: skip
    probe_backoff: float = Field(
        default=1.0, ge=1, le=100, title="Health check backoff",
        description="While open, each failed check multiplies the interval to the next one by this (1: a fixed interval), up to the maximum interval. A readiness announcement (announce_ready) is checked at once.",
    )  # fmt: skip
    probe_max_interval_seconds: float | None = Field(
        default=None, gt=0, le=MAX_PROBE_INTERVAL_SECONDS, title="Maximum health check interval (s)",
        description="Cap on the backed-off interval. Empty: 16 x the health check interval.",
    )  # fmt: skip
    ready_recovery_seconds: float | None = Field(
        default=None, ge=0, title="Ramp after a verified readiness (s)",
        description="The recovery ramp when the component announced it is ready and the health check confirmed it; 0 closes after the half-open probe. Empty: the recovery ramp.",
    )  # fmt: skip
    replay_concurrency: int = Field(
        default=4, ge=1, le=MAX_REPLAY_CONCURRENCY, title="Replay concurrency",
        description="Dead letters replayed at once while the circuit is closed; while half-open only the probe, during the recovery ramp its share (within the bulkhead's permits).",
    )  # fmt: skip
    on_open: Literal["fail", "wait"] = Field(
        default="fail", title="When open",
        description="Fail a rejected call at once (fail) or wait for the circuit to admit it (wait).",
    )  # fmt: skip
    max_wait_seconds: float = Field(
        default=30.0, ge=0, title="Maximum wait (s)",
        description="Seconds a call may wait for admission when the policy is to wait.",
    )  # fmt: skip
    store_url: str | None = Field(
        default=None, title="Store URL", pattern=STORE_URL_PATTERN,
        description=f"Where breaker state is shared ({STORE_URL_FORMS}); empty for the default.",
        examples=["redis://127.0.0.1:6379/0"],
    )  # fmt: skip

    @field_validator("store_url", mode="before")
    @classmethod
    def _check_store_url(cls, value: object) -> object:
        # before the pattern, so a bad URL gets the cause (port, host, database) and not a regex
        if value is None:
            return value
        try:
            return check_store_url(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _check_fields_together(self) -> CircuitBreakerPolicy:
        if (self.slow_call_rate_threshold is None) != (self.slow_call_seconds is None):
            raise ValueError(
                "slow_call_rate_threshold and slow_call_seconds must be set together "
                f"(got {self.slow_call_rate_threshold!r} and {self.slow_call_seconds!r})"
            )
        cap = self.max_open_seconds
        if cap is not None and cap < self.open_seconds:
            raise ValueError(
                f"max_open_seconds ({cap}) must be >= open_seconds ({self.open_seconds})"
            )
        uses_rate = self.failure_rate_threshold is not None or self.slow_call_seconds is not None
        if uses_rate and self.window_type == "count" and self.minimum_calls > self.window_size:
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) must be <= window_size "
                f"({self.window_size}) for a count window, or no rate can ever trip"
            )
        try:  # anything the core refuses must be refused here too, not on first use
            self.to_config("validation")
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return self

    def trip_condition(self) -> TripCondition:
        """The trip conditions this policy sets, composed with `|`."""
        trip: TripCondition = ConsecutiveFailures(self.failure_threshold)
        if self.failure_rate_threshold is not None:
            trip = trip | FailureRate(self.failure_rate_threshold, self.minimum_calls)
        if self.slow_call_rate_threshold is not None and self.slow_call_seconds is not None:
            slow = SlowCallRate(
                self.slow_call_rate_threshold, self.slow_call_seconds, self.minimum_calls
            )
            trip = trip | slow
        return trip

    def to_config(self, name: str) -> BreakerConfig:
        """The core `BreakerConfig` of the breaker called `name`.

        Raises:
            ConfigurationError: `name` is empty.
        """
        return BreakerConfig(
            name=name,
            trip=self.trip_condition(),
            window_type=self.window_type,
            window_size=self.window_size,
            open_seconds=self.open_seconds,
            open_multiplier=self.open_multiplier,
            max_open_seconds=self.max_open_seconds,
            open_jitter=self.open_jitter,
            half_open_calls=self.half_open_calls,
            probe_ttl_seconds=self.probe_ttl_seconds,
            recovery_seconds=self.recovery_seconds,
            recovery_min_fraction=self.recovery_min_fraction,
            recovery_aggression=self.recovery_aggression,
            recovery_failure_rate=self.recovery_failure_rate,
            probe_interval_seconds=self.probe_interval_seconds,
            probe_confirm_failures=self.probe_confirm_failures,
            probe_backoff=self.probe_backoff,
            probe_max_interval_seconds=self.probe_max_interval_seconds,
            ready_recovery_seconds=self.ready_recovery_seconds,
            replay_concurrency=self.replay_concurrency,
        )
