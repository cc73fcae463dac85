"""Self-calibrated rarity for the real-series detector (`robust_metric`), thresholds v7.

Each rule's statistic (the spike z, the two CUSUMs, the window mean, the local z) is also judged
against the distribution of that same statistic on this series so far: an alarm needs both the
frozen absolute threshold and the record rule, and a tail probability below a frozen level under
a Gaussian fitted to the statistic's own recent history. This is the idea of Numenta's "anomaly
likelihood" (Ahmad, Lavin, Purdy and Agha 2017, "Unsupervised real-time anomaly detection for
streaming data", Neurocomputing 262:134-147, section 3.2): a raw score is read against the
running mean and variance of the raw scores of the same stream, so a noisy stream whose scores
often run high alarms less while a quiet one keeps its sensitivity. Numenta keep a window of
8640 scores; here the moments are exponentially weighted over a span of `n` samples, which costs
O(1) per sample and needs no window.

The test is one-sided per direction: (s - mean) / sd > `q` for a rise and (mean - s) / sd > `q`
for a drop of a signed statistic. Before `n // 10` samples the moments are too young to judge
and every statistic counts as rare (the record rule and the first-day margin still apply).

Thresholds v10 (`rm_rare_unbias`) remove the start-up bias of those moments. v7's recursion
starts the mean at the first value and the variance at 0, and both only forget their start at the
rate alpha: after m updates the first value still holds a weight (1 - alpha)^m of the mean (0.79
at m = 1000 with a span of 8640, 0.14 at m = 8640) and the variance has received a weight of
about 1 - (1 - alpha)^m (0.21 at m = 1000), the start-up bias that Kingma and Ba (2015) divide
out of Adam's moments. For a CUSUM whose first value is 0 the mean sat near 0 and the spread was
misread, so for the first span (most of a 1500-4000-row NAB file) the gate judged against the
wrong bar. v10 keeps the moments of the exponentially weighted sample itself, normalised by its
total weight (West's 1979 update for weighted data, with every old weight decayed by 1 - alpha):
no start value is favoured, and after a few spans both versions agree.
"""

from __future__ import annotations

import math

__all__ = ["Rarity"]


class Rarity:
    """Exponentially weighted mean and variance of `channels` statistics, and their tail test.

    Args:
        channels: statistics tracked (indices 0 .. channels - 1).
        n: span of the exponential weights (alpha = 2 / (n + 1)).
        q: a statistic is rare when it lies more than `q` standard deviations beyond its mean.
        unbias: the moments of the exponentially weighted sample, normalised by its total
            weight (v10), instead of a recursion started at the first value and at 0 (v7).
    """

    def __init__(self, channels: int, n: int, q: float, unbias: bool = False) -> None:
        self.alpha = 2.0 / (n + 1.0)
        self.q = q
        self.unbias = unbias
        self.weight = 0.0  # v10: the total weight of the samples seen, sum of (1 - alpha)^age
        self.min_count = max(1, n // 10)
        self.count = 0
        self.mean = [0.0] * channels
        self.var = [0.0] * channels

    def push(self, values: tuple[float, ...]) -> None:
        """Add one sample's statistics (one per channel, in channel order)."""
        a = self.alpha
        self.count += 1
        if self.unbias:
            self._push_weighted(values)
            return
        if self.count == 1:
            self.mean = [float(v) for v in values]
            return
        for i, v in enumerate(values):
            d = v - self.mean[i]
            # West's (1979) exponentially weighted update of mean and variance
            self.mean[i] += a * d
            self.var[i] = (1.0 - a) * (self.var[i] + a * d * d)

    def _push_weighted(self, values: tuple[float, ...]) -> None:
        # West's (1979) update for weighted samples: the old weights decay by 1 - alpha and the
        # new sample weighs 1, so mean and variance are those of the exponentially weighted
        # sample itself, normalised by its total weight (no start value is favoured)
        keep = 1.0 - self.alpha
        self.weight = keep * self.weight + 1.0
        for i, v in enumerate(values):
            d = v - self.mean[i]
            self.mean[i] += d / self.weight
            self.var[i] = keep * self.var[i] + d * (v - self.mean[i])  # weighted sum of squares

    def rare(self, channel: int, value: float, up: bool = True) -> bool:
        """True when `value` lies beyond `q` deviations of the channel's mean, in its direction."""
        if self.q <= 0.0 or self.count < self.min_count:
            return True
        sd = self.sd(channel)
        dev = value - self.mean[channel] if up else self.mean[channel] - value
        return dev > self.q * sd

    def sd(self, channel: int) -> float:
        """The channel's standard deviation."""
        var = self.var[channel]
        if self.unbias:
            var = var / self.weight if self.weight > 0.0 else 0.0
        return math.sqrt(max(var, 0.0))

    def gate(
        self, rules: frozenset[str] | tuple[()], z: float, up: float, down: float, mean: float
    ) -> tuple[bool, bool, bool, bool, bool, bool]:
        """The first family's six tests: spike up and down, CUSUM up and down, mean up and down.

        The channels are 0 the signed z, 1 and 2 the two CUSUMs, 3 the signed window mean (the
        order `push` takes them in); a rule not in `rules` passes unjudged.
        """
        spike, cusum, mean_on = "spike" in rules, "cusum" in rules, "mean" in rules
        return (
            not spike or self.rare(0, z, True),
            not spike or self.rare(0, z, False),
            not cusum or self.rare(1, up, True),
            not cusum or self.rare(2, down, True),
            not mean_on or self.rare(3, mean, True),
            not mean_on or self.rare(3, mean, False),
        )
