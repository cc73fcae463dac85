"""Pure exponential-backoff and jitter calculations.

This module computes retry delays using the definitions from Marc Brooker,
"Exponential Backoff And Jitter", AWS Architecture Blog, 2015
(https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
With base ``B``, cap ``C`` and 0-based attempt ``n``:

* exponential (no jitter): ``min(C, B * 2**n)``
* full jitter: ``U(0, min(C, B * 2**n))``
* equal jitter: ``v = min(C, B * 2**n)``; ``v/2 + U(0, v/2)``
* decorrelated jitter: ``min(C, U(B, 3 * prev))`` with ``prev`` starting at ``B``

What it does:
    Maps ``(attempt, u, previous)`` to a delay in seconds, where ``u`` is a
    uniform draw in ``[0, 1)`` supplied by the caller, and validates every input.
    :func:`delays` turns a strategy and a caller-owned ``random.Random``-like
    object into a finite sequence of delays.

What it does not do:
    It never sleeps, reads a clock, performs I/O, logs, or touches the global
    ``random`` module state. It does not decide *whether* to retry (which errors
    are retryable, deadlines, retry budgets); callers own that policy. All
    randomness is injected, so results are fully determined by the arguments.

The strategies themselves live in `prefect_ft.core.backoff_strategies`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from prefect_ft.core.backoff_strategies import (
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
)

__all__ = [
    "BackoffStrategy",
    "DecorrelatedJitter",
    "EqualJitter",
    "ExponentialBackoff",
    "FullJitter",
    "RandomSource",
    "delays",
]


@runtime_checkable
class RandomSource(Protocol):
    """Anything with a ``random()`` method returning a float in ``[0, 1)``.

    ``random.Random`` and ``numpy.random.Generator`` both satisfy this.
    """

    def random(self) -> float:
        """Return the next uniform draw in ``[0, 1)``."""
        ...


@runtime_checkable
class BackoffStrategy(Protocol):
    """Common interface of the strategies (`prefect_ft.core.backoff_strategies`)."""

    def delay(self, attempt: int, u: float, previous: float | None = None) -> float:
        """Return the delay in seconds before retry ``attempt`` (0-based)."""
        ...


def delays(strategy: BackoffStrategy, rng: RandomSource, max_attempts: int) -> Iterator[float]:
    """Yield the delays for retries ``0 .. max_attempts - 1``.

    Draws exactly one ``rng.random()`` value per yielded delay (also for
    :class:`ExponentialBackoff`, which ignores it), so the number of draws does
    not depend on the strategy. Each delay is passed as ``previous`` to the
    next call, which is what :class:`DecorrelatedJitter` needs; the other
    strategies ignore it.

    Args:
        strategy: Any object with ``delay(attempt, u, previous)``.
        rng: Caller-owned source of uniform draws, e.g. ``random.Random(42)``.
        max_attempts: Number of delays to yield; must be >= 0.

    Returns:
        An iterator of delays in seconds.

    Raises:
        ValueError: If ``max_attempts`` is negative (raised immediately), or if
            ``rng.random()`` returns a value outside ``[0, 1)`` (raised when
            that delay is produced).
        TypeError: If ``max_attempts`` is not an int.

    Example:
        >>> import random
        >>> [round(d, 3) for d in delays(FullJitter(1.0, 10.0), random.Random(0), 3)]
        [0.844, 1.516, 1.682]
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise TypeError(f"max_attempts must be an int >= 0 (got {type(max_attempts).__name__})")
    if max_attempts < 0:
        raise ValueError(f"max_attempts must be >= 0 (got {max_attempts!r})")
    return _delays(strategy, rng, max_attempts)


def _delays(strategy: BackoffStrategy, rng: RandomSource, max_attempts: int) -> Iterator[float]:
    previous: float | None = None
    for attempt in range(max_attempts):
        previous = strategy.delay(attempt, rng.random(), previous)
        yield previous
