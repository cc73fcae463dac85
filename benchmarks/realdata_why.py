"""Why a NAB window was missed or hit late: each rule's best inside it against the bar it had.

`realdata_explain.py` lists the alarms near a missed window; this replays the real-series
detector (`robust_metric.RobustStream`) and reads its state at every sample of each scored window,
up to the first alarm there, so the cause can be told apart (issue 12):

- **held**: samples inside a hold-off (an earlier alarm's episode swallows the window);
- **unjudged**: samples whose chosen predictor had no forecast (a seasonal bin not yet seen twice,
  as after gaps), which no rule reads;
- per rule (`z+`/`z-` the spike, `up`/`dn` the CUSUMs, `m+`/`m-` the window mean, `l+`/`l-` the
  local family), the largest ratio of its statistic to the strictest of its bars: the absolute
  threshold, the record times its margin (times the first-day factor while learning), and for
  the gated rules the rarity bar (mean + `rm_rare_z` sd of the statistic on this series). A ratio
  just below 1 is a near miss; a CUSUM whose record bar rises with it (`up` 0.9-1.0 for many
  samples) is the self-record of a slow excursion (RESULTS.md, v6).

It reads the stream's internals after each update: a diagnostic, not a product interface.

    PYTHONPATH=. .venv/bin/python benchmarks/realdata_why.py              # missed and late windows
    PYTHONPATH=. .venv/bin/python benchmarks/realdata_why.py --all --thresholds 6
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from benchmarks import realdata as rd
from prefect_ft.detection.baselines import apply_transform
from prefect_ft.detection.robust_metric import RobustStream
from prefect_ft.detection.thresholds import VERSION, Thresholds, load_thresholds

LATE = 0.55  # a hit after this relative position is late: NAB windows centre on the label


def _bars(st: RobustStream, th: Thresholds) -> dict[str, float]:
    """Each rule's strictest bar as the stream's next decision will see it (read before it)."""
    margin = th.rm_record_margin * (th.rm_learn_factor if st.learning else 1.0)
    rz, rc, rm = st.rec.spike(), st.rec.cusum(), st.rec.mean()
    rules = set(th.rm_rare_rules.split(",")) if th.rm_rare_z > 0 else set()
    mu, sd = st.rare.mean, [math.sqrt(v) for v in st.rare.var]

    def rare(i: int, rule: str, sign: float = 1.0) -> float:
        if rule not in rules or st.rare.count < st.rare.min_count:
            return 0.0  # not gated, or the moments are too young to judge (everything is rare)
        return sign * mu[i] + th.rm_rare_z * sd[i]

    out = {
        "z+": max(th.rm_spike_z, margin * rz[0], rare(0, "spike")),
        "z-": max(th.rm_spike_z, margin * rz[1], rare(0, "spike", -1.0)),
        "up": max(th.rm_h, margin * rc[0], rare(1, "cusum")),
        "dn": max(th.rm_h, margin * rc[1], rare(2, "cusum")),
        "m+": max(th.rm_mean_z, margin * rm[0], rare(3, "mean")),
        "m-": max(th.rm_mean_z, margin * rm[1], rare(3, "mean", -1.0)),
    }
    if st.local is not None:
        lm = margin * th.rm_local_margin
        out["l+"] = max(th.rm_local_z, lm * st.local.record_up())
        out["l-"] = max(th.rm_local_z, lm * st.local.record_down())
    return out


def _stats(st: RobustStream, z: float, zl: float | None) -> dict[str, float]:
    """Each rule's statistic once the stream took the sample of baseline z `z`, local z `zl`."""
    full = len(st.win) == st.win.maxlen
    mean = st.win_sum / len(st.win) if full and st.win else 0.0
    out = {"z+": z, "z-": -z, "up": st.up, "dn": st.down, "m+": mean, "m-": -mean}
    if zl is not None:
        out |= {"l+": zl, "l-": -zl}
    return out


def why(s: rd.Series, th: Thresholds) -> list[dict]:
    """Per scored window of `s`: first alarm's relative position (None if missed), held and
    unjudged samples, and each rule's best (ratio, row offset, statistic, bar) before it."""
    st = RobustStream(s.kind, th)
    prob = rd.probation(s.ts.size)
    wins = [w for w in s.spans if w[1] >= prob]
    out = {w: {"window": w, "pos": None, "held": 0, "unjudged": 0, "best": {}} for w in wins}
    for i, (t, x) in enumerate(zip(s.ts.tolist(), s.values.tolist(), strict=True)):
        w = next((w for w in wins if w[0] <= i <= w[1]), None)
        d = out[w] if w is not None else None
        judged = None
        if d is not None and d["pos"] is None and st.model is not None:
            model = st.model
            y = apply_transform(st.tf, st.c, x)
            zl = st.local.z(y) if st.local is not None else None
            p = model.predictions(t)[model.choice]
            if st.hold > 0:
                d["held"] += 1
            elif p is None or model.scale <= 0.0:
                d["unjudged"] += 1
            else:
                judged = ((y - p) / model.scale, zl, _bars(st, th))
        alarm = st.update(t, x)
        if d is None or d["pos"] is not None:
            continue
        if alarm is not None:
            d["pos"] = (i - w[0]) / (w[1] - w[0] + 1)
        elif judged is not None:
            z, zl, bars = judged
            for rule, stat in _stats(st, z, zl).items():
                bar = bars[rule]
                ratio = stat / bar if bar > 0 else 0.0
                if rule not in d["best"] or ratio > d["best"][rule][0]:
                    d["best"][rule] = (ratio, i - w[0], stat, bar)
    return list(out.values())


def line(name: str, d: dict) -> str:
    """One window's reading: the three rules that came closest first."""
    tag = "MISSED" if d["pos"] is None else f"hit at {d['pos']:.2f}"
    best = sorted(d["best"].items(), key=lambda kv: -kv[1][0])[:3]
    near = "; ".join(f"{r} {q:.2f} at +{o} ({v:.1f} vs {b:.1f})" for r, (q, o, v, b) in best)
    return (
        f"{name} rows {d['window'][0]}-{d['window'][1]}: {tag}, held {d['held']}, "
        f"unjudged {d['unjudged']} | {near}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--thresholds", default=VERSION, help="frozen version (default: current)")
    ap.add_argument("--all", action="store_true", help="every scored window, not only misses")
    args = ap.parse_args(argv)
    th = load_thresholds(args.thresholds)
    print(f"thresholds v{args.thresholds}")
    for s in rd.load_nab():
        for d in why(s, th):
            if args.all or d["pos"] is None or d["pos"] > LATE:
                print(line(s.name, d))


if __name__ == "__main__":
    main()
