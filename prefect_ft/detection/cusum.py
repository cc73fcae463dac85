"""CUSUM building blocks (Page 1954), shared by the burst, degradation and metric detectors.

For a known change, CUSUM minimises the worst-case delay at a given false-alarm rate (Lorden 1971;
Moustakides 1986), which is why every abrupt-change detector here is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["GaussianCusum", "bernoulli_llr", "robust_scale"]


def bernoulli_llr(p0: float, p1: float) -> tuple[float, float]:
    """Log-likelihood-ratio increments of a Bernoulli CUSUM (Reynolds and Stoumbos 1999).

    Args:
        p0: in-control failure probability.
        p1: out-of-control failure probability worth detecting (p1 > p0).

    Returns:
        `(on_failure, on_success)`: add the first for a failed task, the second otherwise.
    """
    return math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))


def robust_scale(mad: float, mean_abs_dev: float, level: float) -> float:
    """A positive scale for robust z: 1.4826 * MAD, else 1.2533 * mean |dev|, else a tiny floor.

    The fallbacks keep a constant or quantised series from dividing by zero; the floor is relative
    to the level so a constant series gives z = 0 rather than noise amplified a billion times.
    """
    if mad > 0:
        return 1.4826 * mad
    if mean_abs_dev > 0:
        return 1.2533 * mean_abs_dev
    return max(1e-9, 1e-6 * abs(level))


@dataclass(slots=True)
class GaussianCusum:
    """One-sided tabular CUSUM on standardised values (Page 1954; Montgomery, SQC, ch. 9).

    `s = max(0, s + z - k)`; an alarm when `s > h`. `zero_index` remembers the last time `s`
    was 0, the Page estimate of the change point.

    Attributes:
        k: reference value in sigma units (half the shift to detect fastest).
        h: decision interval.
        s: current statistic.
        zero_at: time of the last reset to zero (the onset estimate).
    """

    k: float
    h: float
    s: float = 0.0
    zero_at: float = 0.0

    def step(self, z: float, t: float) -> bool:
        """Add one standardised value observed at time `t`; True when the CUSUM crosses `h`."""
        s = self.s + z - self.k
        if s <= 0.0:
            self.s = 0.0
            self.zero_at = t
            return False
        self.s = s
        return s > self.h

    def reset(self, t: float) -> None:
        """Restart after an alarm."""
        self.s = 0.0
        self.zero_at = t
