"""The four backoff strategies of `prefect_ft.core.backoff` and the checks of their inputs.

Each strategy maps ``(attempt, u, previous)`` to a delay in seconds, with the definitions of
Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015 (formulas in
`prefect_ft.core.backoff`, which re-exports every class here). Split from that module so the
strategies and the interface plus the `delays` generator each stay one concern. Pure: no
clock, no I/O, no global ``random`` state; every draw is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DecorrelatedJitter", "EqualJitter", "ExponentialBackoff", "FullJitter"]


def _check_params(base_seconds: float, cap_seconds: float, multiplier: float) -> None:
    """Validate the shared strategy parameters.

    Raises:
        ValueError: If a parameter is out of range; the message names the field.
    """
    for name, value in (
        ("base_seconds", base_seconds),
        ("cap_seconds", cap_seconds),
        ("multiplier", multiplier),
    ):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite (got {value!r})")
    if not base_seconds > 0:
        raise ValueError(f"base_seconds must be > 0 (got {base_seconds!r})")
    if not cap_seconds >= base_seconds:
        raise ValueError(
            f"cap_seconds must be >= base_seconds ({base_seconds!r}) (got {cap_seconds!r})"
        )
    if not multiplier > 1:
        raise ValueError(f"multiplier must be > 1 (got {multiplier!r})")


def _check_attempt(attempt: int) -> None:
    """Validate a 0-based attempt number.

    Raises:
        TypeError: If ``attempt`` is not an ``int`` (``bool`` is rejected).
        ValueError: If ``attempt`` is negative.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise TypeError(f"attempt must be an int >= 0 (got {type(attempt).__name__})")
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0 (got {attempt!r})")


def _check_u(u: float) -> None:
    """Validate a uniform draw.

    Raises:
        ValueError: If ``u`` is not in ``[0, 1)`` (NaN included).
    """
    if not (0.0 <= u < 1.0):
        raise ValueError(f"u must be in [0, 1) (got {u!r})")


def _exponential(base: float, cap: float, multiplier: float, attempt: int) -> float:
    """Return ``min(cap, base * multiplier**attempt)`` without overflowing."""
    try:
        grown = base * multiplier**attempt
    except OverflowError:
        return float(cap)
    return float(min(cap, grown))


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Capped exponential backoff without jitter: ``min(C, B * m**n)``.

    Source: Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog,
    2015 ("Exponential" curve; there ``m = 2``).

    Attributes:
        base_seconds: ``B``, the delay before the first retry; must be > 0.
        cap_seconds: ``C``, the maximum delay; must be >= ``base_seconds``.
        multiplier: Growth factor per attempt; must be > 1. Defaults to 2.
    """

    base_seconds: float
    cap_seconds: float
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        _check_params(self.base_seconds, self.cap_seconds, self.multiplier)

    def ceiling(self, attempt: int) -> float:
        """Return ``min(C, B * m**attempt)``, the un-jittered delay.

        Args:
            attempt: 0-based retry number.

        Returns:
            The capped exponential delay in seconds.

        Raises:
            TypeError: If ``attempt`` is not an int.
            ValueError: If ``attempt`` is negative.
        """
        _check_attempt(attempt)
        return _exponential(self.base_seconds, self.cap_seconds, self.multiplier, attempt)

    def delay(self, attempt: int, u: float, previous: float | None = None) -> float:
        """Return the deterministic delay ``min(C, B * m**attempt)``.

        Args:
            attempt: 0-based retry number.
            u: Uniform draw in ``[0, 1)``; validated but unused (no jitter).
            previous: Ignored; accepted for interface compatibility.

        Returns:
            The delay in seconds.

        Raises:
            TypeError: If ``attempt`` is not an int.
            ValueError: If ``attempt`` < 0 or ``u`` is outside ``[0, 1)``.
        """
        _check_u(u)
        return self.ceiling(attempt)


@dataclass(frozen=True, slots=True)
class FullJitter:
    """Full jitter: ``U(0, min(C, B * m**n))``.

    Source: Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog,
    2015 ("Full Jitter"). The blog found it does the least total work of the
    compared schemes in its optimistic-concurrency simulation.

    Attributes:
        base_seconds: ``B``; must be > 0.
        cap_seconds: ``C``; must be >= ``base_seconds``.
        multiplier: Growth factor per attempt; must be > 1. Defaults to 2.
    """

    base_seconds: float
    cap_seconds: float
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        _check_params(self.base_seconds, self.cap_seconds, self.multiplier)

    def delay(self, attempt: int, u: float, previous: float | None = None) -> float:
        """Return ``u * min(C, B * m**attempt)``, a value in ``[0, v]``.

        Args:
            attempt: 0-based retry number.
            u: Uniform draw in ``[0, 1)``.
            previous: Ignored; accepted for interface compatibility.

        Returns:
            The delay in seconds.

        Raises:
            TypeError: If ``attempt`` is not an int.
            ValueError: If ``attempt`` < 0 or ``u`` is outside ``[0, 1)``.
        """
        _check_attempt(attempt)
        _check_u(u)
        v = _exponential(self.base_seconds, self.cap_seconds, self.multiplier, attempt)
        return min(v, u * v)


@dataclass(frozen=True, slots=True)
class EqualJitter:
    """Equal jitter: ``v/2 + U(0, v/2)`` with ``v = min(C, B * m**n)``.

    Source: Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog,
    2015 ("Equal Jitter"). Always waits at least half the exponential delay.

    Attributes:
        base_seconds: ``B``; must be > 0.
        cap_seconds: ``C``; must be >= ``base_seconds``.
        multiplier: Growth factor per attempt; must be > 1. Defaults to 2.
    """

    base_seconds: float
    cap_seconds: float
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        _check_params(self.base_seconds, self.cap_seconds, self.multiplier)

    def delay(self, attempt: int, u: float, previous: float | None = None) -> float:
        """Return ``v/2 + u * v/2``, a value in ``[v/2, v]``.

        Args:
            attempt: 0-based retry number.
            u: Uniform draw in ``[0, 1)``.
            previous: Ignored; accepted for interface compatibility.

        Returns:
            The delay in seconds.

        Raises:
            TypeError: If ``attempt`` is not an int.
            ValueError: If ``attempt`` < 0 or ``u`` is outside ``[0, 1)``.
        """
        _check_attempt(attempt)
        _check_u(u)
        v = _exponential(self.base_seconds, self.cap_seconds, self.multiplier, attempt)
        half = v / 2
        return min(v, half + u * half)


@dataclass(frozen=True, slots=True)
class DecorrelatedJitter:
    """Decorrelated jitter: ``min(C, U(B, 3 * prev))``, ``prev`` starting at ``B``.

    Source: Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog,
    2015 ("Decorrelated Jitter"). The delay depends on the previous delay, not
    on the attempt number; callers thread ``previous`` (see :func:`delays`).

    Attributes:
        base_seconds: ``B``, the minimum delay; must be > 0.
        cap_seconds: ``C``; must be >= ``base_seconds``.
        multiplier: Upper growth factor applied to ``prev`` (3 in the source);
            must be > 1.
    """

    base_seconds: float
    cap_seconds: float
    multiplier: float = 3.0

    def __post_init__(self) -> None:
        _check_params(self.base_seconds, self.cap_seconds, self.multiplier)

    def delay(self, attempt: int, u: float, previous: float | None = None) -> float:
        """Return ``min(C, B + u * (m * prev - B))``, within ``[B, min(C, m * prev)]``.

        Args:
            attempt: 0-based retry number; validated but unused by the formula.
            u: Uniform draw in ``[0, 1)``.
            previous: The delay returned for the previous attempt, or ``None``
                for the first retry (treated as ``B``). Must be finite and
                >= ``base_seconds``.

        Returns:
            The delay in seconds.

        Raises:
            TypeError: If ``attempt`` is not an int.
            ValueError: If ``attempt`` < 0, ``u`` is outside ``[0, 1)`` or
                ``previous`` is below ``base_seconds`` or not finite.
        """
        _check_attempt(attempt)
        _check_u(u)
        base = self.base_seconds
        if previous is None:
            prev = base
        elif math.isfinite(previous) and previous >= base:
            prev = previous
        else:
            raise ValueError(
                f"previous must be >= base_seconds ({base!r}) and finite (got {previous!r})"
            )
        high = self.multiplier * prev
        drawn = min(high, base + u * (high - base))
        return float(min(self.cap_seconds, drawn))
