"""Where the real-data points go: per rule, per file, per missed window or event (issue 12).

`benchmarks/realdata.py` prints the scores; this prints what they are made of, for one frozen
thresholds version, so a change can be aimed at what costs most:

- per alarm rule (spike, rise, drop, local spike, local drop, escalation): NAB alarms inside a
  window (TP) and outside every window after probation (FP), MSFT alarms near an event (ok) and
  false alarms (FA);
- the NAB false alarms' cost per category in units of fpWeight (times 0.11 under the standard
  profile, 0.22 under reward_low_FP);
- each missed NAB window and MSFT event, with the alarms near it (rows relative to its start:
  an alarm a few rows early is a precursor whose hold-off swallowed the event).

    PYTHONPATH=. .venv/bin/python benchmarks/realdata_explain.py              # current version
    PYTHONPATH=. .venv/bin/python benchmarks/realdata_explain.py --thresholds 5 --fp
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from benchmarks import realdata as rd
from prefect_ft.detection.metric import analyse_metric
from prefect_ft.detection.thresholds import VERSION, load_thresholds


def rule(explanation: str) -> str:
    """The rule an alarm came from: the words between the kind and the colon."""
    m = re.match(r"\w+ (.*?): ", explanation)
    return m.group(1) if m else "?"


def _alarms(s: rd.Series, th) -> list[tuple[int, str, str]]:
    out = analyse_metric(s.ts, s.values, kind=s.kind, thresholds=th).alarms
    return [(int(np.searchsorted(s.ts, a.at)), rule(a.explanation), a.explanation) for a in out]


def explain_nab(nab: Sequence[rd.Series], th, show_fp: bool) -> None:
    per_rule: Counter[tuple[str, str]] = Counter()
    cost: Counter[str] = Counter()
    for s in nab:
        alarms = _alarms(s, th)
        prob = rd.probation(s.ts.size)
        for i, how, text in alarms:
            if i < prob:
                continue
            if any(a <= i <= b for a, b in s.spans):
                per_rule[(how, "TP")] += 1
                continue
            before = [w for w in s.spans if w[1] < i]
            pos = abs(before[-1][1] - i) / max(1.0, before[-1][1] - before[-1][0]) if before else 3
            c = -rd.scaled_sigmoid(pos)
            per_rule[(how, "FP")] += 1
            cost[s.name.split("/")[0]] += c
            if show_fp:
                print(f"  FP  {s.name} row {i} cost {c:.2f}: {text}")
        for a, b in s.spans:
            if b < prob or any(a <= i <= b for i, _, _ in alarms):
                continue
            near = [(i - a, how) for i, how, _ in alarms if a - 200 <= i <= b + 200]
            print(f"  missed window {s.name} rows {a}-{b}: alarms near (row - start) {near}")
    print(
        "NAB alarms per rule:", ", ".join(f"{h} {k} {n}" for (h, k), n in sorted(per_rule.items()))
    )
    total = sum(cost.values())
    print(
        "NAB false-alarm cost in fpWeight units (x 0.11 standard, x 0.22 low FP): "
        + ", ".join(f"{c} {v:.1f}" for c, v in cost.most_common())
        + f"; total {total:.1f}"
    )


def explain_msft(msft: Sequence[rd.Series], th, show_fp: bool) -> None:
    per_rule: Counter[tuple[str, str]] = Counter()
    for s in msft:
        alarms = _alarms(s, th)
        prob = rd.probation(s.ts.size)
        for i, how, text in alarms:
            if i < prob:
                continue
            ok = any(a - 2 <= i <= b + 6 for a, b in s.spans)
            per_rule[(how, "ok" if ok else "FA")] += 1
            if show_fp and not ok:
                print(f"  FA  {s.name} row {i}: {text}")
        for a, b in s.spans:
            if a < prob or any(a - 2 <= i <= b + 2 for i, _, _ in alarms):
                continue
            near = [(i - a, how) for i, how, _ in alarms if a - 300 <= i <= b + 50]
            print(f"  missed event {s.name} rows {a}-{b}: alarms near (row - start) {near}")
    print(
        "MSFT alarms per rule:", ", ".join(f"{h} {k} {n}" for (h, k), n in sorted(per_rule.items()))
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--thresholds", default=VERSION, help="frozen version to read (default: current)"
    )
    ap.add_argument("--fp", action="store_true", help="also list every false alarm")
    args = ap.parse_args(argv)
    th = load_thresholds(args.thresholds)
    print(f"thresholds v{args.thresholds}")
    explain_nab(rd.load_nab(), th, args.fp)
    explain_msft(rd.load_msft(), th, args.fp)


if __name__ == "__main__":
    main()
