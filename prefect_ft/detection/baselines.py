"""Causal, incremental baselines for real metric series: transform, seasonality, robust scale.

Real series are unlike the synthetic generator: they are seasonal (daily, weekly), skewed and
heavy-tailed, often counts with many zeros, and they shift level. `RealSeriesModel` learns all of
that online from the data it has seen, one sample at a time, so a prefix gives the full run's
answers up to its end:

- **Transform**, frozen at the end of the warm-up: non-negative integer data with a small median
  are counts, stabilised by the Anscombe square root 2 sqrt(x + 3/8) (Anscombe 1948); other
  non-negative skewed data get log(x + c), c a low quantile of the positive values (the Box-Cox
  lambda = 0 member, Box and Cox 1964); anything else stays as it is.
- **Three predictors** compete: flat (the median of the recent values) and, for a daily and a
  weekly period, the median of the same phase (and its two neighbours) over the last k periods,
  a causal cousin of STL's seasonal sub-series smoother (Cleveland et al. 1990). The one with the
  smallest median absolute error over the recent past is used, and a seasonal one only when it
  beats flat clearly: seasonality is detected, not assumed.
- **Robust scale** of the chosen predictor's residuals: 1.4826 * MAD (Hampel 1974; Rousseeuw and
  Croux 1993), with `robust_scale`'s fallbacks for quantised and constant data.
- Samples join the baselines winsorised to the prediction +- `clip` scales (Huber 1964), so one
  outlier cannot drag a baseline while a lasting change is still absorbed.

Decisions (spike, shift, records, hold-off) are in `robust_metric.py`; this module only
predicts and scales.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import numpy as np

from prefect_ft.detection.cusum import robust_scale

__all__ = ["RealSeriesModel", "SlidingMax", "apply_transform", "choose_transform"]

PERIODS_S = (86400.0, 7 * 86400.0)  # daily and weekly: the seasons of human-driven load


def _median(values) -> float:
    # sorting a few hundred Python floats is ~20x cheaper than np.median's per-call overhead
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


class RollingMedian:
    """Median of the last `n` values, kept sorted (bisect: O(log n) search, O(n) memmove in C)."""

    def __init__(self, n: int) -> None:
        self.window: deque[float] = deque(maxlen=n)
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self.window)

    def append(self, v: float) -> None:
        """Add `v`, dropping the oldest value when full."""
        if len(self.window) == self.window.maxlen:
            del self.sorted[bisect.bisect_left(self.sorted, self.window[0])]
        self.window.append(v)
        bisect.insort(self.sorted, v)

    def clear(self) -> None:
        """Forget every value."""
        self.window.clear()
        self.sorted.clear()

    def median(self) -> float:
        """The median (0 when empty)."""
        s, n = self.sorted, len(self.sorted)
        if n == 0:
            return 0.0
        return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


class SlidingMax:
    """Maximum of the last `n` values pushed, O(1) amortised (monotonic deque, Lemire 2006)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0
        self.q: deque[tuple[int, float]] = deque()

    def push(self, v: float) -> None:
        """Add `v` as the newest value."""
        while self.q and self.q[-1][1] <= v:
            self.q.pop()
        self.q.append((self.i, v))
        self.i += 1
        while self.q[0][0] <= self.i - 1 - self.n:
            self.q.popleft()

    def max(self) -> float:
        """The largest of the last `n` values (0 before any)."""
        return self.q[0][1] if self.q else 0.0

    def full(self) -> bool:
        """True once `n` values were pushed."""
        return self.i >= self.n


def choose_transform(warm: np.ndarray) -> tuple[str, float]:
    """Name and offset of the variance-stabilising transform for data like `warm`."""
    if warm.size == 0 or float(warm.min()) < 0:
        return "identity", 0.0
    pos = warm[warm > 0]
    if pos.size == 0:
        return "identity", 0.0
    med = float(np.median(warm))
    if np.all(warm == np.round(warm)) and med <= 50:
        return "anscombe", 0.375
    q = np.quantile(warm, [0.5, 0.99])
    if q[1] > 3.0 * max(q[0], 1e-300):  # a long right tail, relative to the level
        return "log", max(float(np.quantile(pos, 0.05)), 1e-12)
    return "identity", 0.0


def apply_transform(name: str, c: float, x: float) -> float:
    """The transform of one value (x < 0 is clamped at 0 for the non-negative ones)."""
    if name == "anscombe":
        return 2.0 * math.sqrt(max(x, 0.0) + c)
    if name == "log":
        return math.log(max(x + c, 1e-300))
    return x


class RealSeriesModel:
    """Online predictor and residual scale for one transformed series (see the module docstring).

    Args:
        dt: the series' typical sampling interval (s).
        t0: time of the first sample (phase origin).
        flat_n: values the flat predictor takes the median of.
        k_periods: periods the seasonal predictors look back.
        scale_n: residuals the robust scale is computed on.
        refresh: samples between scale and model-choice refreshes.
        season_gain: a seasonal predictor is chosen only if its error is below this fraction of
            the flat one's.
        min_scale: floor of the residual scale (1 on the Anscombe scale of counts).
    """

    def __init__(
        self,
        dt: float,
        t0: float,
        *,
        flat_n: int,
        k_periods: int,
        scale_n: int,
        refresh: int,
        season_gain: float,
        min_scale: float = 0.0,
    ) -> None:
        self.t0 = t0
        self.min_scale = min_scale
        self.refresh = refresh
        self.season_gain = season_gain
        self.flat = RollingMedian(flat_n)
        # per usable period: (period, bins, bin width, one deque of the last k values per bin)
        self.seasons: list[tuple[float, int, float, list[deque[float]]]] = []
        for p in PERIODS_S:
            nb = round(p / dt) if dt > 0 else 0
            if 6 <= nb <= 20000:
                self.seasons.append((p, nb, p / nb, [deque(maxlen=k_periods) for _ in range(nb)]))
        m = 1 + len(self.seasons)
        err_n = max(50, min(scale_n, round(86400.0 / dt) if dt > 0 else 50))
        self.err = [deque(maxlen=err_n) for _ in range(m)]  # |residual| per predictor
        self.res = [deque(maxlen=scale_n) for _ in range(m)]  # residuals per predictor
        self.choice = 0
        self.scales = [0.0] * m
        self.degenerate = False
        self.count = 0

    @property
    def model_name(self) -> str:
        """ "flat", "daily" or "weekly"."""
        return "flat" if self.choice == 0 else ("daily", "weekly")[self.choice - 1]

    def _bin(self, i: int, t: float) -> tuple[list[deque[float]], int, int]:
        _, nb, width, bins = self.seasons[i]
        return bins, int(((t - self.t0) % (nb * width)) // width) % nb, nb

    def predictions(self, t: float) -> list[float | None]:
        """Each predictor's forecast for time `t` (None while it has too little history)."""
        out: list[float | None] = [self.flat.median() if len(self.flat) >= 5 else None]
        for i in range(len(self.seasons)):
            bins, b, nb = self._bin(i, t)
            if len(bins[b]) < 2:
                out.append(None)
                continue
            vals = [*bins[(b - 1) % nb], *bins[b], *bins[(b + 1) % nb]]
            out.append(_median(vals))
        return out

    def ready(self) -> bool:
        """True once the chosen predictor has a scale to measure residuals by."""
        return self.scale > 0.0

    def learn(self, t: float, y: float, preds: list[float | None], clip: float) -> None:
        """Add sample `y` at `t`; each predictor stores it winsorised around its own forecast."""
        for m, p in enumerate(preds):
            if p is None:
                continue
            self.err[m].append(abs(y - p))
            self.res[m].append(y - p)
        self.flat.append(self._clip(y, preds[0], self.scales[0], clip))
        for i in range(len(self.seasons)):
            bins, b, _ = self._bin(i, t)
            bins[b].append(self._clip(y, preds[i + 1], self.scales[i + 1], clip))
        self.count += 1
        if self.count % self.refresh == 0 or self.scale == 0.0:
            self._refresh()

    @staticmethod
    def _clip(y: float, p: float | None, scale: float, clip: float) -> float:
        if p is None or scale <= 0.0:
            return y
        return min(max(y, p - clip * scale), p + clip * scale)

    @property
    def scale(self) -> float:
        """Robust scale of the chosen predictor's residuals (0 while unknown)."""
        return self.scales[self.choice]

    def relearn_level(self) -> None:
        """After a lasting shift: forget the flat level (the seasonal shapes are kept)."""
        self.flat.clear()
        self.err[0].clear()
        self.res[0].clear()
        self.scales[0] = 0.0

    def _refresh(self) -> None:
        errs = [_median(e) if len(e) == e.maxlen else math.inf for e in self.err]
        errs[0] = _median(self.err[0]) if len(self.err[0]) >= 20 else math.inf
        best = 0
        for m in range(1, len(errs)):
            if errs[m] < self.season_gain * errs[0] and errs[m] < errs[best]:
                best = m
        self.choice = best
        level = self.flat.median()
        for m, r in enumerate(self.res):
            if len(r) < 20:
                self.scales[m] = 0.0
                continue
            arr = np.fromiter(r, float)
            med = float(np.median(arr))
            dev = np.abs(arr - med)
            mad, mean_dev = float(np.median(dev)), float(dev.mean())
            # counts on the Anscombe scale have unit variance when Poisson (Anscombe 1948): a
            # sparse count series whose MAD is 0 must not read one extra event as 5 sigma
            self.scales[m] = max(robust_scale(mad, mean_dev, level), self.min_scale)
            if m == best:
                self.degenerate = mad == 0.0 and mean_dev == 0.0


class SlidingOrder:
    """The last `n` values kept sorted, for the k-th largest and k-th smallest of them.

    A k-th largest record (k > 1) is what an extreme-value threshold needs when the past may hold
    an unlabelled anomaly or two: one earlier outlier no longer raises the bar for the next, and
    under exchangeable data a new value beats the k-th largest of M with probability k/(M+1)
    (order statistics, as in the peaks-over-threshold start of SPOT, Siffer et al. 2017).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0
        self.window: deque[float] = deque()
        self.sorted: list[float] = []

    def push(self, v: float) -> None:
        """Add `v` as the newest value, dropping the oldest beyond `n`."""
        self.window.append(v)
        bisect.insort(self.sorted, v)
        if len(self.window) > self.n:
            del self.sorted[bisect.bisect_left(self.sorted, self.window.popleft())]
        self.i += 1

    def largest(self, k: int) -> float:
        """The k-th largest value (the smallest held, or 0 before any, when fewer than k)."""
        s = self.sorted
        return s[-min(k, len(s))] if s else 0.0

    def smallest(self, k: int) -> float:
        """The k-th smallest value (the largest held, or 0 before any, when fewer than k)."""
        s = self.sorted
        return s[min(k, len(s)) - 1] if s else 0.0
