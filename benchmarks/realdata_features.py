"""What separates NAB hits from false alarms: features of each alarm, and their AUC (issue 12).

`realdata_explain.py` says which rule each alarm came from; this replays the detector
(`RobustStream`, the frozen thresholds) sample by sample on the NAB dev files and keeps, at each
alarm after probation, what it saw: the z and its record, the chosen predictor, and the z of the
samples just before and after, measured with the alarm's own prediction and scale (after: a look
ahead that a rule could only buy with a delay). Per rule group it prints the AUC of each feature,
P(feature of a hit > feature of a false alarm) with ties counted half (Mann and Whitney 1947;
0.5: no separation), and the medians. It also counts the samples no rule judged because the
chosen predictor had no forecast (an empty seasonal bin on an irregular series).

    PYTHONPATH=. .venv/bin/python benchmarks/realdata_features.py              # current version
    PYTHONPATH=. .venv/bin/python benchmarks/realdata_features.py --thresholds 6
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks import realdata as rd
from benchmarks.realdata_explain import rule
from prefect_ft.detection.baselines import apply_transform
from prefect_ft.detection.robust_metric import RobustStream
from prefect_ft.detection.thresholds import VERSION, load_thresholds

Feature = Callable[[dict], float]


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(a value of `pos` > a value of `neg`), ties counted half (the Mann-Whitney U / n m)."""
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    p, n = p[~np.isnan(p)][:, None], n[~np.isnan(n)][None, :]  # a feature not defined there
    if p.size == 0 or n.size == 0:
        return math.nan
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def replay(s: rd.Series, th) -> tuple[list[dict], int]:
    """The alarms of one file with what the stream saw at each, and the samples left unjudged."""
    st = RobustStream(s.kind, th)
    n = s.ts.size
    z_seen = np.full(n, np.nan)  # each sample's z against the prediction in force before it
    y = np.empty(n)
    pred = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    alarms, blind = [], 0
    for i, (t, x) in enumerate(zip(s.ts.tolist(), s.values.tolist(), strict=True)):
        seen = None
        if st.model is not None:
            m = st.model
            p = m.predictions(t)[m.choice]
            if p is None and st.hold == 0:
                blind += 1
            y_i = apply_transform(st.tf, st.c, x)
            if p is not None and m.scale > 0:
                z_seen[i], pred[i], scale[i] = (y_i - p) / m.scale, p, m.scale
            seen = (st.rec.spike(), m.model_name)
        alarm = st.update(t, x)
        if alarm is not None and seen is not None:
            alarms.append({"i": i, "rule": rule(alarm.explanation), "z": dict(alarm.evidence)["z"]})
            alarms[-1] |= {"record": seen[0], "model": seen[1]}
    if st.model is not None:
        y = np.array([apply_transform(st.tf, st.c, v) for v in s.values.tolist()])
    prob, prev = rd.probation(n), -1
    out = []
    for a in alarms:
        i, z = a["i"], a["z"]
        p, sc = pred[i], scale[i]

        def at(k: int, i: int = i, p: float = p, sc: float = sc) -> float:
            return (y[i + k] - p) / sc if 0 <= i + k < n else math.nan

        sign = 1.0 if z > 0 else -1.0
        a |= {
            "hit": any(lo <= i <= hi for lo, hi in s.spans),
            "next": [at(k) for k in (1, 2, 5)],
            "prev": at(-1),
            "before12": float(np.nanmean(z_seen[max(0, i - 12) : i])) * sign if i else 0.0,
            "similar": int(np.nansum(sign * z_seen[max(0, i - 2000) : i] > 0.5 * abs(z))),
            "gap": i - prev if prev >= 0 else 99999,
            "hour": (s.ts[i] % 86400.0) / 3600.0,
            "file": s.name,
        }
        prev = i
        if i >= prob:
            out.append(a)
    return out, blind


def _per_z(v: float, a: dict) -> float:
    """`v` over the alarm's z (NaN for a local alarm whose baseline z is 0)."""
    return v / a["z"] if a["z"] != 0 else math.nan


def _record(a: dict) -> float:
    up, down = a["record"]
    r = up if a["z"] > 0 else down
    return abs(a["z"]) / r if r > 0 else math.nan


FEATURES: dict[str, Feature] = {
    "abs z": lambda a: abs(a["z"]),
    "abs z over the spike record": _record,
    "next sample's z / z": lambda a: _per_z(a["next"][0], a),
    "max of the next two / z": lambda a: _per_z(max(a["next"][0], a["next"][1]), a),
    "z five samples later / z": lambda a: _per_z(a["next"][2], a),
    "previous sample's z / z": lambda a: _per_z(a["prev"], a),
    "mean z of the 12 before, signed": lambda a: a["before12"],
    "similar in the 2000 before": lambda a: a["similar"],
    "samples since the previous alarm": lambda a: a["gap"],
    "a seasonal predictor chosen": lambda a: float(a["model"] != "flat"),
    "downward": lambda a: float(a["z"] < 0),
    "hour of day (UTC)": lambda a: a["hour"],
}
GROUPS = (("spike",), ("rise",), ("rise", "drop"), ("local spike", "local drop"))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--thresholds", default=VERSION, help="frozen version (default: current)")
    args = ap.parse_args(argv)
    th = load_thresholds(args.thresholds)
    every: list[dict] = []
    for s in rd.load_nab():
        alarms, blind = replay(s, th)
        every += alarms
        if blind:
            print(f"  {s.name}: {blind} samples unjudged (chosen predictor without a forecast)")
    for group in GROUPS:
        hits = [a for a in every if a["rule"] in group and a["hit"]]
        false = [a for a in every if a["rule"] in group and not a["hit"]]
        print(f"{' + '.join(group)}: {len(hits)} hits, {len(false)} false alarms")
        for name, f in FEATURES.items():
            h, fa = [f(a) for a in hits], [f(a) for a in false]
            mh = np.nanmedian(h) if h else math.nan
            mf = np.nanmedian(fa) if fa else math.nan
            print(f"   {name:36s} AUC {auc(h, fa):.2f}  medians {mh:.2f} vs {mf:.2f}")


if __name__ == "__main__":
    main()
