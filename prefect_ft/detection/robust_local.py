"""A second detector family for real series: a point against its own neighbourhood (v5).

The first family (`robust_metric`) measures a sample against a learnt baseline, flat or seasonal,
whose residuals set the scale. Where that baseline lags the series (a daily ramp that the model
does not track at a 1-minute step, a level that drifts), its residuals are large all day, so its
records grow and a short spike or a sharp drop no longer beats them: on MSFT's machine series a
spike of 15 scales stayed below a record of 17.

This family asks a local question instead, the Hampel identifier's (Hampel 1974; Pearson 2002,
"Outliers in process modeling and identification"): how far is the sample from the median of the
last `n` samples, in units of the series' sample-to-sample noise? The noise is measured on first
differences, 1.4826 * MAD(dy) / sqrt(2) over the last `scale_n` steps: differencing removes a
slow level or season, so a smooth ramp keeps a small scale while a jump stands out (the
difference-based scale of von Neumann's successive differences, robustified as in Rousseeuw and
Croux 1993). The value is read through the same transform as the first family.

Its decision uses the first family's record rule on its own statistic (a new k-th largest of the
last M values: probability k/(M+1) per sample under exchangeable data, Siffer et al. 2017), so
the two families combine by OR with a false-alarm bound of at most the sum of the two.
"""

from __future__ import annotations

import math

from prefect_ft.detection.baselines import RollingMedian, SlidingMax, SlidingOrder

__all__ = ["LocalDeviation"]

_SQRT2 = math.sqrt(2.0)


class LocalDeviation:
    """Local z of each transformed sample: (y - median of the last `n`) / difference scale.

    Args:
        n: samples the local median is taken over (before the current one).
        scale_n: first differences the noise scale is taken over.
        record_n: local z values the record remembers.
        k: the record is the k-th largest (and k-th smallest) local z of the memory.
        refresh: samples between scale refreshes (the scale moves slowly; sorting is not free).
    """

    def __init__(self, n: int, scale_n: int, record_n: int, k: int = 1, refresh: int = 10) -> None:
        self.window = RollingMedian(n)
        self.diffs = RollingMedian(scale_n)
        self.k = k
        # k = 1 needs only the two extremes: two monotonic deques cost a third of a sorted window
        self.order = SlidingOrder(record_n) if k > 1 else None
        self.hi, self.lo = SlidingMax(record_n), SlidingMax(record_n)
        self.refresh = refresh
        self.scale = 0.0
        self.prev: float | None = None
        self.count = 0

    def z(self, y: float) -> float | None:
        """The local z of `y` (None while the window or the scale is not ready)."""
        if len(self.window) < self.window.window.maxlen or self.scale <= 0.0:
            return None
        return (y - self.window.median()) / self.scale

    def learn(self, y: float) -> None:
        """Add `y` to the neighbourhood and its difference to the noise scale."""
        if self.prev is not None:
            self.diffs.append(abs(y - self.prev))
        self.prev = y
        self.window.append(y)
        self.count += 1
        if self.count % self.refresh == 0 and len(self.diffs) >= 20:
            self.scale = 1.4826 * self.diffs.median() / _SQRT2
            if self.scale <= 0.0:
                # quantised data: most steps are 0; the mean step is still a scale
                s = self.diffs.sorted
                self.scale = 1.2533 * (sum(s) / len(s)) / _SQRT2

    def push(self, z: float) -> None:
        """Add a local z to the record."""
        if self.order is not None:
            self.order.push(z)
        else:
            self.hi.push(z)
            self.lo.push(-z)

    def record_up(self) -> float:
        """The k-th largest local z of the memory (0 before any)."""
        return self.order.largest(self.k) if self.order is not None else self.hi.max()

    def record_down(self) -> float:
        """Minus the k-th smallest local z of the memory (0 before any)."""
        return -self.order.smallest(self.k) if self.order is not None else self.lo.max()

    def decide(
        self, zl: float, z: float, limits: tuple[float, float, float], sides: tuple[bool, bool]
    ) -> tuple[str, float] | None:
        """The family's decision on local z `zl`: its name and statistic, or None.

        `limits` are the local z to exceed, the margin over the record, and the baseline z `z`
        that must agree in sign and exceed the confirmation (`rm_local_confirm`); `sides` says
        whether rises and drops may alarm.
        """
        z_min, margin, confirm = limits
        up_ok, down_ok = sides
        if zl > z_min and up_ok and zl > margin * self.record_up() and z > confirm:
            return ("local spike", zl)
        if -zl > z_min and down_ok and -zl > margin * self.record_down() and -z > confirm:
            return ("local drop", -zl)
        return None
