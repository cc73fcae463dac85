"""Exceptions raised by prefect_ft.

```
FaultToleranceError
 ├── CircuitOpenError        a breaker rejected the call (carries `breaker` and `retry_after`)
 ├── BulkheadFullError       no bulkhead permit within the wait budget
 ├── StoreUnavailableError   a shared store could not be reached (never reaches a protected call)
 ├── ControlError            a component's control channel failed (unreachable, timeout, HTTP status)
 └── ConfigurationError      also a ValueError: bad settings, named field and allowed range
```
"""

from __future__ import annotations

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "ConfigurationError",
    "ControlError",
    "FaultToleranceError",
    "StoreUnavailableError",
]


class FaultToleranceError(Exception):
    """Base class of every prefect_ft error."""


class CircuitOpenError(FaultToleranceError):
    """A circuit breaker rejected the call.

    Attributes:
        breaker: the breaker's name.
        retry_after: seconds until the breaker may admit a call again (None when unknown,
            e.g. forced open by an operator).
        state: the breaker state that rejected the call.
    """

    # marks a rejection so an enclosing breaker ignores it instead of counting a failure
    _prefect_ft_rejection = True

    def __init__(self, breaker: str, retry_after: float | None, state: str = "OPEN") -> None:
        # the message is built lazily in __str__: a rejection must stay cheap (target <= 2 us)
        super().__init__(breaker, retry_after, state)
        self.breaker = breaker
        self.retry_after = retry_after
        self.state = state

    def __str__(self) -> str:
        when = "" if self.retry_after is None else f"; retry after {self.retry_after:.3f} s"
        return f"circuit breaker {self.breaker!r} is {self.state}{when}"


class BulkheadFullError(FaultToleranceError):
    """No bulkhead permit could be had within the allowed wait."""

    def __init__(self, bulkhead: str, max_concurrent: int, waited: float) -> None:
        self.bulkhead = bulkhead
        self.max_concurrent = max_concurrent
        self.waited = waited
        super().__init__(
            f"bulkhead {bulkhead!r} is full ({max_concurrent} concurrent); waited {waited:.3f} s"
        )

    def __reduce__(self):
        return (type(self), (self.bulkhead, self.max_concurrent, self.waited))


class StoreUnavailableError(FaultToleranceError):
    """A shared breaker store could not be reached or answered with an error."""


class ConfigurationError(FaultToleranceError, ValueError):
    """Invalid configuration: the message names the field and the allowed range."""


class ControlError(FaultToleranceError):
    """A component's control channel failed: unreachable, timed out, or answered an error.

    Attributes:
        endpoint: the control endpoint (URL or `python:module:attr`).
        operation: `health`, `reload`, `restart`, `reset_connections` or `resources`.
        status: the HTTP status when the component answered, else None.
        reason: one line, e.g. `unreachable`, `timed out after 5 s`, `HTTP 500: ...`.
    """

    def __init__(
        self, endpoint: str, operation: str, reason: str, status: int | None = None
    ) -> None:
        self.endpoint = endpoint
        self.operation = operation
        self.reason = reason
        self.status = status
        super().__init__(f"control {operation} on {endpoint}: {reason}")

    def __reduce__(self):
        return (type(self), (self.endpoint, self.operation, self.reason, self.status))
