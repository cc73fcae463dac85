"""The records of the real-series detector (`robust_metric`): what a statistic must beat.

Split from `robust_metric.py` along the seam between the per-sample rules (there) and the memory
they read (here). Every first-family statistic has to set a **record**: it must exceed
`rm_record_margin` times its largest value over the last `rm_record_n` ordinary samples (one
record per direction). Under exchangeable data a new maximum of M samples has probability
1/(M+1) whatever the distribution, so this caps the false-alarm rate of heavy-tailed and
autocorrelated residuals that a fixed z threshold cannot (the order-statistics argument behind
extreme-value thresholds such as SPOT, Siffer et al. 2017); the margin then asks for a clear
record, not a tie.

Thresholds v3 change two record rules (each off in v2's numbers): `rm_record_alarms`, an alarm's
own statistics join the records, and `rm_record_k`, a spike must beat the k-th largest z of the
memory, not the largest. v2 kept alarms out, so a benign event that recurs (a batch job's spike)
alarmed every time, while one missed outlier hid every smaller one after it; now an event seen k
times is normal, and one earlier outlier does not raise the bar (a new value beats the k-th
largest of M with probability k/(M+1)). v4 takes k = 2.
"""

from __future__ import annotations

from prefect_ft.detection.baselines import SlidingMax, SlidingOrder

__all__ = ["Records"]


class Records:
    """Records of the spike z (both signs), the two CUSUMs and the two window means.

    Args:
        n: samples each record remembers.
        k: the spike record is the k-th largest z (k > 1: one sorted window serves both signs).
        means: keep the window-mean records (`rm_mean_n` > 0).
    """

    def __init__(self, n: int, k: int, means: bool) -> None:
        self.k, self.means = k, means
        # z up, z down, CUSUM up, CUSUM down, window mean up, window mean down
        self.rec = [SlidingMax(n) for _ in range(6)]
        self.zorder = SlidingOrder(n)

    @property
    def count(self) -> int:
        """Samples pushed so far (the records cover min(count, n) of them)."""
        return self.rec[2].i

    def push(self, z: float, up: float, down: float, mean: float) -> None:
        """Add one sample's statistics."""
        rec = self.rec
        if self.k > 1:
            self.zorder.push(z)
        else:
            rec[0].push(z)
            rec[1].push(-z)
        rec[2].push(up)
        rec[3].push(down)
        if self.means:
            rec[4].push(mean)
            rec[5].push(-mean)

    def spike(self) -> tuple[float, float]:
        """The records of z going up and of -z going down."""
        if self.k > 1:
            return self.zorder.largest(self.k), -self.zorder.smallest(self.k)
        return self.rec[0].max(), self.rec[1].max()

    def cusum(self) -> tuple[float, float]:
        """The records of the upper and the lower CUSUM."""
        return self.rec[2].max(), self.rec[3].max()

    def mean(self) -> tuple[float, float]:
        """The records of the window mean going up and of minus it going down."""
        return self.rec[4].max(), self.rec[5].max()
