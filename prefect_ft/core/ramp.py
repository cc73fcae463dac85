"""The RECOVERY ramp: admit a rising fraction of calls, after Envoy's load-balancer slow start.

fraction(t) = max(min_fraction, (t / window) ** (1 / aggression)), for 0 <= t < window.
"""

from __future__ import annotations

__all__ = ["ramp_admits", "recovery_fraction"]


def recovery_fraction(
    elapsed: float, window: float, min_fraction: float, aggression: float
) -> float:
    """The share of calls RECOVERY admits `elapsed` seconds into a ramp of `window` seconds."""
    if window <= 0 or elapsed >= window:
        return 1.0
    if elapsed <= 0:
        return min_fraction
    return max(min_fraction, (elapsed / window) ** (1.0 / aggression))


def ramp_admits(offered: int, admitted: int, fraction: float) -> bool:
    """Admit the next call iff that keeps admitted/offered at or under `fraction`.

    Deterministic error diffusion instead of a coin flip: after n offers the admitted count is
    within one call of fraction * n, so the ramp tracks its curve without randomness.
    """
    return admitted + 1 <= fraction * (offered + 1) + 1e-9
