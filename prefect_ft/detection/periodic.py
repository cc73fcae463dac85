"""Periodicity of failure timestamps: Z^2_m periodogram, harmonic check and a folded-count test.

1. Scan trial frequencies with the Z^2_2 statistic (Rayleigh power summed over 2 harmonics;
   Buccheri et al. 1983), which is chi^2 with 4 degrees of freedom for a Poisson process.
2. Refine the peak, then test the peak period and its multiples (2P, 3P, ... 12P): a sharp pulse
   train puts nearly as much power at j/P as at 1/P, so the peak alone is often a harmonic
   (research/detection.md section 2.4; Vlachos et al. 2005 confirm candidates on a second view).
   Each candidate is folded at 5 nearby periods, since the peak's error grows with the multiple.
3. Keep the candidate whose folded profile is most significant. The folded test counts failures in
   an 8 % phase window per cycle and caps each cycle's count, so a single error burst (many
   failures in one cycle) cannot pass for a cycle; it also needs `min_cycles` cycles on phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PeriodEstimate", "find_period", "find_periods"]

_BINS = 25  # 4 % phase bins; pairs of bins cover +-2 sigma of the 2 % jitter of the spec


@dataclass(frozen=True, slots=True)
class PeriodEstimate:
    """A detected period.

    Attributes:
        period_s: the period.
        power: Z^2_2 periodogram peak.
        fold_z: z of the capped on-phase counts against a Poisson background.
        cycles: full cycles in the window.
        cycles_on: cycles with an on-phase excess.
        per_cycle: estimated extra failures per cycle.
        onset: estimated time of the first on-phase cycle.
        on_phase: indices (into the input) of failures in the on-phase window.
    """

    period_s: float
    power: float
    fold_z: float
    cycles: int
    cycles_on: int
    per_cycle: float
    onset: float
    on_phase: np.ndarray


def _z2(t: np.ndarray, freqs: np.ndarray, cuts: np.ndarray | None = None) -> np.ndarray:
    """Z^2_2 per trial frequency: for all of `t`, then for each segment `t[cuts[k]:cuts[k+1]]`.

    Z^2_2 = (2/n) sum_{j=1,2} |sum_k exp(2 pi i j f t_k)|^2. On a uniform grid the phasors follow
    a recurrence (one complex product per cell instead of one exp), which is what keeps a scan
    at a few milliseconds. Segments (e.g. one failure type each, `t` sorted by type) reuse the
    same phasors through `np.add.reduceat`, so they cost little more than the one scan.

    Returns:
        `(len(freqs),)` without `cuts`, else `(len(freqs), 1 + len(cuts) - 1)`: all, then segments.
        `cuts` must tile `t`: strictly increasing, from 0 to `t.size`.
    """
    seg = np.asarray([0, t.size] if cuts is None else cuts, dtype=np.int64)
    n = np.concatenate([[t.size], np.diff(seg)]).astype(float)
    n = n[:1] if cuts is None else n
    out = np.empty((freqs.size, n.size))
    if freqs.size and t.size:
        df = freqs[1] - freqs[0] if freqs.size > 1 else 0.0
        step = max(1, 200_000 // max(1, t.size))  # bound memory when a burst floods the window
        rot = np.exp(2j * np.pi * df * t)
        starts = seg[:-1]
        for i in range(0, freqs.size, step):
            m = min(step, freqs.size - i)
            ph = np.empty((m, t.size), dtype=complex)
            ph[0] = np.exp(2j * np.pi * freqs[i] * t)
            if m > 1:
                ph[1:] = rot
                np.cumprod(ph, axis=0, out=ph)
            acc = np.zeros((m, n.size))
            for second in (False, True):
                if second:
                    # the second harmonic's phasors are the squares: in place, since the first
                    # harmonic is summed (a new m x n array per chunk was a third of the time)
                    np.multiply(ph, ph, out=ph)
                if cuts is None:
                    # no segments: the whole-row sums are all the caller reads (a fine scan)
                    sums = ph.sum(axis=1)[:, None]
                else:
                    # the segments tile the row (`cuts` starts at 0 and ends at `t.size`), so
                    # the whole-row sum is the sum of the segments': one pass over the phasors
                    # instead of two (the sums differ from a direct one in the last bits)
                    sums = np.empty((m, n.size), dtype=complex)
                    sums[:, 1:] = np.add.reduceat(ph, starts, axis=1)
                    sums[:, 0] = sums[:, 1:].sum(axis=1)
                acc += sums.real**2 + sums.imag**2
            out[i : i + m] = 2.0 * acc / np.maximum(n, 1.0)
    return out[:, 0] if cuts is None else out


def _capped_moments(lam: float, cap: int) -> tuple[float, float]:
    # mean and variance of min(Poisson(lam), cap), the null law of one cycle's capped count
    k = np.arange(cap + 1)
    pmf = np.empty(cap + 1)
    pmf[0] = math.exp(-lam)
    for i in range(1, cap + 1):
        pmf[i] = pmf[i - 1] * lam / i
    pmf[-1] += max(0.0, 1.0 - pmf.sum())
    mean = float((k * pmf).sum())
    return mean, float(((k - mean) ** 2 * pmf).sum())


def _fold(t: np.ndarray, period: float, end: float) -> tuple[float, int, int, float, float, int]:
    """Capped folded-count z at `period` over the full cycles ending at `end`."""
    cycles = int((end - t[0]) // period) if t.size else 0
    start = end - cycles * period
    if cycles < 2:
        return 0.0, cycles, 0, 0.0, start, 0
    x = (t[t >= start] - start) / period
    cyc = np.minimum(x.astype(np.int64), cycles - 1)
    b = ((x - np.floor(x)) * _BINS).astype(np.int64) % _BINS
    counts = np.bincount(cyc * _BINS + b, minlength=cycles * _BINS).reshape(cycles, _BINS)
    pair = counts + np.roll(counts, -1, axis=1)
    # median of the _BINS (odd) column sums; np.median's overhead is most of a fold's cost
    lam = max(2.0 * float(np.sort(counts.sum(axis=0))[_BINS // 2]) / cycles, 0.05)
    cap = math.ceil(lam + 3.0 * math.sqrt(lam)) + 3
    mean, var = _capped_moments(lam, cap)
    score = np.minimum(pair, cap).sum(axis=0)
    best = int(np.argmax(score))
    z = (float(score[best]) - cycles * mean) / math.sqrt(cycles * var)
    on = pair[:, best] >= lam + 1.0
    per_cycle = max(0.0, float(pair[on, best].mean()) - lam) if on.any() else 0.0
    return z, cycles, int(on.sum()), per_cycle, start, best


def find_period(
    times: np.ndarray,
    now: float,
    window_s: float,
    min_period_s: float,
    max_period_s: float,
    min_cycles: int = 8,
    min_power: float = 0.0,
) -> PeriodEstimate | None:
    """Find the dominant period of failure times in `[now - window_s, now]`.

    Args:
        times: failure timestamps, sorted ascending.
        now: end of the window (only times up to `now` are used).
        window_s: window length.
        min_period_s: shortest trial period.
        max_period_s: longest trial period (at most `window_s / min_cycles`).
        min_cycles: the window must hold at least this many cycles of a candidate period.
        min_power: skip the folded test (the costly part) when the periodogram peak is lower.

    Returns:
        The best period with its statistics, or None when the window has too few failures.
    """
    labels = np.zeros(times.size, dtype=np.int64)
    return find_periods(
        times, now, window_s, min_period_s, max_period_s, min_cycles, min_power, labels, []
    )[0]


def find_periods(
    times: np.ndarray,
    now: float,
    window_s: float,
    min_period_s: float,
    max_period_s: float,
    min_cycles: int,
    min_power: float,
    labels: np.ndarray,
    wanted: list[int],
) -> list[PeriodEstimate | None]:
    """`find_period` for all of `times` and for each wanted label alone, in one shared pass.

    Args:
        labels: one integer per time (e.g. the failure type's code).
        wanted: labels to scan on their own as well.

    Returns:
        Estimates for all times, then one per wanted label; `on_phase` indexes `times`.
    """
    lo_i, hi_i = np.searchsorted(times, [now - window_s, now], side="right")
    span = window_s
    max_period_s = min(max_period_s, span / min_cycles)
    out: list[PeriodEstimate | None] = [None] * (1 + len(wanted))
    if hi_i - lo_i < 2 * min_cycles or max_period_s <= min_period_s:
        return out
    order = np.argsort(labels[lo_i:hi_i], kind="stable")
    lab = labels[lo_i:hi_i][order]
    t_rel = times[lo_i:hi_i][order] - (now - window_s)
    # segments: each wanted label's run in the sorted window (empty when it is absent)
    bounds = np.searchsorted(lab, np.repeat(np.asarray(wanted, dtype=lab.dtype), 2))
    bounds[1::2] = np.searchsorted(lab, np.asarray(wanted, dtype=lab.dtype), side="right")
    df = 1.0 / (3.0 * span)  # coarse grid (at most ~17 % power lost); refined below
    freqs = np.arange(1.0 / max_period_s, 1.0 / min_period_s + df, df)
    cuts = np.unique(np.concatenate([[0], bounds, [t_rel.size]]))
    power = _z2(t_rel, freqs, cuts)
    index = order + lo_i
    keep = np.argsort(t_rel, kind="stable")
    out[0] = _estimate(
        t_rel[keep], now - window_s, index[keep], freqs, power[:, 0], span, min_cycles, min_power
    )
    for k, (a, b) in enumerate(bounds.reshape(-1, 2).tolist()):
        if b - a >= 2 * min_cycles:
            col = 1 + int(np.searchsorted(cuts, a))
            out[1 + k] = _estimate(
                t_rel[a:b],
                now - window_s,
                index[a:b],
                freqs,
                power[:, col],
                span,
                min_cycles,
                min_power,
            )
    return out


def _estimate(
    t_rel: np.ndarray,
    origin: float,
    index: np.ndarray,
    freqs: np.ndarray,
    power: np.ndarray,
    span: float,
    min_cycles: int,
    min_power: float,
) -> PeriodEstimate | None:
    """Refine the coarse periodogram's peak, then pick the best-folding multiple of its period.

    `t_rel` are times since `origin` (the start of a window of length `span`); `index` maps
    them into the caller's array for `on_phase`.
    """
    df = 1.0 / (3.0 * span)  # the coarse grid's step
    top = int(np.argmax(power))
    f0 = float(freqs[top])
    if power[top] < 0.75 * min_power:  # refining gains at most ~17 %: it cannot pass
        return PeriodEstimate(
            1.0 / f0, float(power[top]), 0.0, 0, 0, 0.0, origin + float(t_rel[0]), np.empty(0, int)
        )
    fine = np.linspace(f0 - df, f0 + df, 21)
    fine_power = _z2(t_rel, fine)
    f_best = float(fine[int(np.argmax(fine_power))])
    peak = float(fine_power.max())
    if peak < min_power:
        return PeriodEstimate(
            1.0 / f_best, peak, 0.0, 0, 0, 0.0, origin + float(t_rel[0]), np.empty(0, int)
        )
    best: tuple[float, float, int, int, float, float, int] | None = None
    for j in range(1, 13):
        period = j / f_best
        if period > span / min_cycles * 1.0001:
            break
        # The peak's error grows with the multiple, and a period off by 0.4 % drifts a whole
        # bin over 23 cycles: fold each candidate at nearby periods (half-bin drift steps)
        # and keep the best. Without this, P/2 (refined at its own peak) beat a true P folded
        # at 2 x a slightly wrong P/2.
        step = period * period / span / _BINS / 2.0
        z, cycles, on, per_cycle, start, phase_bin, period = max(
            ((*_fold(t_rel, period + i * step, span), period + i * step) for i in range(-2, 3)),
            key=lambda r: r[0],
        )
        # a longer multiple must be clearly better: harmonics of a true period fold nearly as well
        if best is None or z > best[0] * 1.1:
            best = (z, period, cycles, on, per_cycle, start, phase_bin)
    if best is None:
        return None
    z, period, cycles, on, per_cycle, start, phase_bin = best
    x = (t_rel - start) / period
    frac = (x - np.floor(x)) * _BINS
    in_phase = (x >= 0) & (((frac - phase_bin) % _BINS) < 2.0)
    idx = np.nonzero(in_phase)[0]
    onset = origin + float(t_rel[idx[0]] if idx.size else t_rel[0])
    return PeriodEstimate(
        period_s=period,
        power=peak,
        fold_z=z,
        cycles=cycles,
        cycles_on=on,
        per_cycle=per_cycle,
        onset=onset,
        on_phase=index[idx],
    )
