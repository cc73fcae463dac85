"""Detection on real labelled series: NAB dev (32 files) and Microsoft cloud monitoring dev (17).

Data, licence and rules: ../shared/data/README.md. The NAB scorer here is our own, written from
the rules of Lavin and Ahmad (2015, arXiv:1510.03336) and NAB's `nab/sweeper.py`: the first 15 %
of a file (at most 750 rows) is probationary; an alarm inside a window scores the scaled sigmoid
of its relative position (1.0 x tpWeight at the window's first row), only the best alarm of a
window counts, a missed window costs fnWeight, and an alarm outside every window costs fpWeight
times the scaled sigmoid of its distance past the previous window (-1 before the first one).
Normalised score = 100 (raw - null) / (perfect - null), summed over the files.

    PYTHONPATH=. .venv/bin/python benchmarks/realdata.py                # all detectors
    PYTHONPATH=. .venv/bin/python benchmarks/realdata.py --only baseline --files 5
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prefect_ft.detection.metric import analyse_metric, detect_metric
from prefect_ft.detection.stream import MetricStream
from prefect_ft.detection.thresholds import load_thresholds

V1 = load_thresholds("1")
V2 = load_thresholds("2")
V4 = load_thresholds("4")
V5 = load_thresholds("5")
V6 = load_thresholds("6")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PROFILES = {
    "standard": (1.0, 0.11, 1.0),  # tpWeight, fpWeight, fnWeight (NAB config/profiles.json)
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
PUBLISHED = ("ARTime", "contextOSE", "numenta", "windowedGaussian")


@dataclass(frozen=True)
class Series:
    """One labelled file: times (epoch s), values, and its labelled spans as row index pairs."""

    name: str
    ts: np.ndarray
    values: np.ndarray
    spans: tuple[tuple[int, int], ...]  # NAB windows or MSFT events, inclusive row indices
    source: str  # "nab" or "msft"

    @property
    def kind(self) -> str:
        """The only hint a user gives: travel times are latencies, MSFT series are loads."""
        if self.source == "msft":
            return "throughput"
        return "latency" if "TravelTime" in self.name else "generic"


def _epoch(text: str) -> float:
    return float(np.datetime64(text.strip().strip('"').rstrip("Z"), "s").astype(np.int64))


def load_nab(root: Path = DATA / "nab-dev") -> list[Series]:
    """The NAB dev files with their official windows (start and end rows, inclusive)."""
    windows = json.loads((root / "labels" / "windows.json").read_text())
    out = []
    for name in sorted(windows):
        with (root / "data" / name).open() as fh:
            rows = list(csv.reader(fh))[1:]
        ts = np.array([_epoch(r[0]) for r in rows])
        vs = np.array([float(r[1]) for r in rows])
        spans = []
        for start, end in windows[name]:
            lo, hi = np.searchsorted(ts, [_epoch(start), _epoch(end)])
            if ts[lo] != _epoch(start) or ts[hi] != _epoch(end):
                raise ValueError(f"{name}: window {start}..{end} does not fall on rows")
            spans.append((int(lo), int(hi)))
        out.append(Series(name, ts, vs, tuple(spans), "nab"))
    return out


def load_msft(root: Path = DATA / "msft-dev") -> list[Series]:
    """The MSFT dev series; an event is a run of consecutive `Label` = 1 rows."""
    out = []
    for path in sorted((root / "data").glob("*/*.csv")):
        with path.open() as fh:
            rows = list(csv.reader(fh))[1:]
        ts = np.array([_epoch(r[0]) for r in rows])
        vs = np.array([float(r[1]) for r in rows])
        lab = np.array([int(float(r[2])) for r in rows])
        edges = np.flatnonzero(np.diff(np.concatenate([[0], lab, [0]])))
        spans = tuple((int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True))
        out.append(Series(f"{path.parent.name}/{path.name}", ts, vs, spans, "msft"))
    return out


def probation(n: int) -> int:
    """Rows at the start that are never scored: 15 % of the file, at most 750."""
    return int(min(math.floor(0.15 * n), 0.15 * 5000))


def scaled_sigmoid(pos: float) -> float:
    """NAB's reward: 0.98661 at a window's left edge (-1), 0 at its right edge, -1 far after."""
    return -1.0 if pos >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * pos)) - 1.0


@dataclass
class NabScore:
    """One file under one profile."""

    raw: float
    tp: int  # windows hit
    fn: int  # windows missed
    fp: int  # alarms outside every window, after probation
    windows: int  # windows scored (those with a row after probation)


def nab_score(n: int, alarms: Sequence[int], windows: Sequence[tuple[int, int]], profile: str):
    """Score alarm rows on one file of `n` rows with NAB's rules (see the module docstring)."""
    tp_w, fp_w, fn_w = PROFILES[profile]
    max_tp = scaled_sigmoid(-1.0)
    prob = probation(n)
    scored = [w for w in windows if w[1] >= prob]
    best = {w: -fn_w for w in scored}
    fp_total, fp = 0.0, 0
    for i in sorted(set(int(a) for a in alarms)):
        if i < prob or i >= n:
            continue
        inside = next((w for w in scored if w[0] <= i <= w[1]), None)
        if inside is not None:
            width = inside[1] - inside[0] + 1
            s = scaled_sigmoid(-(inside[1] - i + 1) / width) * tp_w / max_tp
            best[inside] = max(best[inside], s)
            continue
        before = [w for w in windows if w[1] < i]
        if before:
            w = before[-1]
            pos = abs(w[1] - i) / max(1.0, float(w[1] - w[0]))
        else:
            pos = 3.0
        fp_total += scaled_sigmoid(pos) * fp_w
        fp += 1
    hit = sum(1 for w in scored if best[w] > -fn_w)
    return NabScore(sum(best.values()) + fp_total, hit, len(scored) - hit, fp, len(scored))


def normalised(scores: Sequence[NabScore], profile: str) -> float:
    """100 (raw - null) / (perfect - null) over the files: null misses all, perfect hits all."""
    tp_w, _, fn_w = PROFILES[profile]
    k = sum(s.windows for s in scores)
    raw = sum(s.raw for s in scores)
    return 100.0 * (raw + fn_w * k) / (tp_w * k + fn_w * k)


def normal_hours(s: Series, pad_after: int) -> float:
    """Hours after probation outside every labelled span widened by 2 rows before, `pad_after`."""
    n = s.ts.size
    normal = np.ones(n, bool)
    normal[: probation(n)] = False
    for a, b in s.spans:
        normal[max(0, a - 2) : b + pad_after + 1] = False
    step = float(np.median(np.diff(s.ts))) if n > 1 else 0.0
    return float(normal.sum()) * step / 3600.0


def msft_events(s: Series, alarms: Sequence[int]) -> tuple[list[int | None], int]:
    """Per event starting after probation, the delay in rows of its first alarm in
    [first - 2, last + 2] (None if missed), and the false alarms: after probation and outside
    every [first - 2, last + 6]."""
    al = np.asarray(sorted(set(int(a) for a in alarms)), dtype=np.int64)
    delays: list[int | None] = []
    for a, b in s.spans:
        if a < probation(s.ts.size):
            continue  # the detector is still learning there: such events are not scored
        hit = al[(al >= a - 2) & (al <= b + 2)]
        delays.append(int(hit[0]) - a if hit.size else None)
    bad = al >= probation(s.ts.size)
    for a, b in s.spans:
        bad &= ~((al >= a - 2) & (al <= b + 6))
    return delays, int(bad.sum())


# ---- detectors under test: (ts, values, kind) -> alarm rows ------------------------------------


def _rows(ts: np.ndarray, alarms) -> list[int]:
    return [int(np.searchsorted(ts, a.at)) for a in alarms]


def det_baseline(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` as it stood before this work (the v1 metric detector); MSFT as generic."""
    k = "generic" if kind == "throughput" else kind
    return _rows(ts, analyse_metric(ts, vs, kind=k, thresholds=V1).alarms)


def det_baseline_throughput(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` v1 with the issue's other reading of MSFT: kind "throughput"."""
    return _rows(ts, analyse_metric(ts, vs, kind=kind, thresholds=V1).alarms)


def det_sigma6(ts: np.ndarray, vs: np.ndarray, kind: str, w: int = 1000) -> list[int]:
    """Naive causal floor: |x - mean| > 6 sd of the previous `w` rows, first row of a run only."""
    ok = np.isfinite(vs)
    x = np.where(ok, vs, 0.0)
    c0 = np.concatenate([[0.0], np.cumsum(ok)])
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    i = np.arange(x.size)
    lo = np.maximum(0, i - w)
    n = c0[i] - c0[lo]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mu = (c1[i] - c1[lo]) / n
        sd = np.sqrt(np.maximum(0.0, (c2[i] - c2[lo]) / n - mu * mu))
        now = ok & (n >= 30) & (sd > 0) & (np.abs(x - mu) > 6.0 * sd)
    start = now & ~np.concatenate([[False], now[:-1]])
    return np.flatnonzero(start).tolist()


def det_v2(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` with thresholds v2 (the robust model before v3's record rules)."""
    return _rows(ts, analyse_metric(ts, vs, kind=kind, thresholds=V2).alarms)


def det_v4(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` with thresholds v4 (the baseline family alone, before v5's local one)."""
    return _rows(ts, analyse_metric(ts, vs, kind=kind, thresholds=V4).alarms)


def det_v5(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` with thresholds v5 (a local alarm still relearns the level)."""
    return _rows(ts, analyse_metric(ts, vs, kind=kind, thresholds=V5).alarms)


def det_v6(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` with thresholds v6 (before v7's self-calibrated rarity)."""
    return _rows(ts, analyse_metric(ts, vs, kind=kind, thresholds=V6).alarms)


def det_realdata(ts: np.ndarray, vs: np.ndarray, kind: str) -> list[int]:
    """`detect_metric` as it stands in this tree (the detector under development)."""
    return _rows(ts, detect_metric(ts, vs, kind=kind))


DETECTORS: dict[str, Callable[[np.ndarray, np.ndarray, str], list[int]]] = {
    "sigma6": det_sigma6,
    "baseline": det_baseline,
    "baseline_throughput": det_baseline_throughput,
    "v2": det_v2,
    "v4": det_v4,
    "v5": det_v5,
    "v6": det_v6,
    "current": det_realdata,
}


@dataclass
class Run:
    """One detector on one series."""

    name: str
    alarms: list[int]
    seconds: float
    n: int
    extra: dict = field(default_factory=dict)


def _run(args: tuple[str, Series]) -> Run:
    det, s = args
    DETECTORS[det](s.ts[:200], s.values[:200], s.kind)  # lazy imports out of the timing
    # CPU time of this process: the machine is shared, and wall time would count the others
    t0 = time.process_time()
    rows = DETECTORS[det](s.ts, s.values, s.kind)
    return Run(s.name, rows, time.process_time() - t0, s.ts.size)


def run_all(det: str, series: Sequence[Series], workers: int) -> list[Run]:
    """Runs `det` on every series with at most `workers` processes (the machine is shared)."""
    jobs = [(det, s) for s in series]
    if workers <= 1:
        return [_run(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(2, workers)) as pool:
        return list(pool.map(_run, jobs))


def report_nab(det: str, nab: list[Series], runs: list[Run], per_file: bool) -> dict:
    pub = json.loads((DATA / "nab-dev" / "published_per_file_scores.json").read_text())
    per = {
        p: [nab_score(s.ts.size, r.alarms, s.spans, p) for s, r in zip(nab, runs, strict=True)]
        for p in PROFILES
    }
    if per_file:
        head = (
            "file".ljust(44) + "  win hit  fp  std   " + " ".join(p[:8].rjust(8) for p in PUBLISHED)
        )
        print(head)
        for s, sc in zip(nab, per["standard"], strict=True):
            ref = " ".join(f"{pub[p]['standard'][s.name]['Score']:8.2f}" for p in PUBLISHED)
            print(f"{s.name:44s} {sc.windows:4d} {sc.tp:3d} {sc.fp:3d} {sc.raw:6.2f}  {ref}")
    hours = sum(normal_hours(s, 0) for s in nab)
    fps = sum(x.fp for x in per["standard"])
    out = {p: round(normalised(v, p), 1) for p, v in per.items()}
    # generalisation check: each half of the files (even and odd rows of the sorted list) alone
    for half, sel in (("even", slice(0, None, 2)), ("odd", slice(1, None, 2))):
        out |= {f"{p}_{half}": round(normalised(v[sel], p), 1) for p, v in per.items()}
    out |= {
        "windows_hit": sum(x.tp for x in per["standard"]),
        "windows": sum(x.windows for x in per["standard"]),
        "fa_per_normal_hour": round(fps / hours, 4),
    }
    print(
        f"NAB  {det:20s} standard {out['standard']:7.1f}  low FP {out['reward_low_FP_rate']:7.1f}"
        f"  low FN {out['reward_low_FN_rate']:7.1f}  hit {out['windows_hit']}/{out['windows']}"
        f"  FA/normal h {out['fa_per_normal_hour']:.4f}"
    )
    print(
        f"NAB  {det:20s} halves: standard even {out['standard_even']:.1f} odd "
        f"{out['standard_odd']:.1f}; low FP even {out['reward_low_FP_rate_even']:.1f} odd "
        f"{out['reward_low_FP_rate_odd']:.1f}; low FN even {out['reward_low_FN_rate_even']:.1f} "
        f"odd {out['reward_low_FN_rate_odd']:.1f}"
    )
    return out


def report_msft(det: str, msft: list[Series], runs: list[Run], per_file: bool) -> dict:
    delays: list[int | None] = []
    fas = 0
    hours = 0.0
    for s, r in zip(msft, runs, strict=True):
        d, fa = msft_events(s, r.alarms)
        h = normal_hours(s, 6)
        if per_file:
            hit = sum(x is not None for x in d)
            print(f"{s.name:44s} events {len(d):3d} hit {hit:3d} FA {fa:3d} ({h:7.1f} h)")
        delays += d
        fas += fa
        hours += h
    got = [x for x in delays if x is not None]
    out = {
        "recall": round(len(got) / max(1, len(delays)), 3),
        "events": len(delays),
        "median_delay_steps": float(np.median(got)) if got else None,
        "fa_per_normal_hour": round(fas / hours, 4),
    }
    print(
        f"MSFT {det:20s} recall {out['recall']:.3f} of {out['events']} events, median delay "
        f"{out['median_delay_steps']} steps, FA/normal h {out['fa_per_normal_hour']:.4f}"
    )
    return out


def stream_latency(s: Series) -> dict:
    """CPU time of each `MetricStream.update` over a whole series (median, p99, max in ms)."""
    stream = MetricStream(s.kind)
    ms = np.empty(s.ts.size)
    for i, (t, x) in enumerate(zip(s.ts.tolist(), s.values.tolist(), strict=True)):
        t0 = time.process_time_ns()
        stream.update(t, x)
        ms[i] = (time.process_time_ns() - t0) / 1e6
    out = {
        "series": s.name,
        "n": int(s.ts.size),
        "median_ms": round(float(np.median(ms)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 2),
    }
    print(
        f"     stream update on {s.name} ({s.ts.size} points): median {out['median_ms']:.3f} ms, "
        f"p99 {out['p99_ms']:.3f} ms, max {out['max_ms']:.1f} ms (CPU)"
    )
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(DETECTORS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--json", type=Path, help="write the totals here")
    args = ap.parse_args(argv)
    nab, msft = load_nab(), load_msft()
    results = {}
    for det in args.only or list(DETECTORS):
        runs_n = run_all(det, nab, args.workers)
        runs_m = run_all(det, msft, args.workers)
        res = {
            "nab": report_nab(det, nab, runs_n, args.per_file),
            "msft": report_msft(det, msft, runs_m, args.per_file),
        }
        every = runs_n + runs_m
        big = max(every, key=lambda r: r.n)
        res["cpu_seconds_total"] = round(sum(r.seconds for r in every), 2)
        res["cpu_seconds_largest"] = [big.name, big.n, round(big.seconds, 3)]
        print(
            f"     {det:20s} compute {res['cpu_seconds_total']:.2f} CPU s for all "
            f"{len(every)} series; largest ({big.n} points) {big.seconds:.3f} s"
        )
        if det == "current":
            res["stream"] = stream_latency(max(nab + msft, key=lambda x: x.ts.size))
        results[det] = res
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
