"""Alarm identity check for detection speed-ups: the same alarms, to the last digit, as before.

Runs the engine over targeted, drawn, daily-load and fault-free histories, two non-default
configurations, and one history fed in 7-minute chunks with a state round trip midway, and
stores (`ref`) or compares (`cmp`) the repr of every alarm (time, component, type, severity,
evidence numbers). `near` compares as `cmp` but lets the numbers of an alarm (score,
evidence) differ by 1e-9 relative: for speed-ups that change floating-point sums in the last
bits (the cyclic periodogram), where the alarms themselves (time, component, pattern, failure
type, severity, onset) must still be the same. Take the reference with the old code first, e.g. from an exported copy:

    git archive HEAD prefect_ft benchmarks | tar -x -C /tmp/base
    cd /tmp/base && PYTHONPATH=$PWD python benchmarks/detection_identity.py ref /tmp/ref.pkl
    cd <worktree> && PYTHONPATH=$PWD python benchmarks/detection_identity.py cmp /tmp/ref.pkl
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
from typing import Any

from benchmarks.detection_scenarios import targeted
from prefect_ft.detection.engine import DetectionEngine, EngineConfig
from prefect_ft.detection.synthetic import Scenario, generate

CASES = [
    ("targeted", 1),
    ("targeted", 2),
    ("drawn", 1000),
    ("drawn", 1001),
    ("load", 7),
    ("null", 5),
]


def _rec(alarm: Any) -> tuple[str, dict[str, Any]]:
    return repr(alarm), alarm.to_dict()


def _near(a: Any, b: Any, rel: float = 1e-9) -> bool:
    """Equal, numbers to `rel` relative (strings, names and counts exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_near(a[k], b[k], rel) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_near(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=rel, abs_tol=0.0)
    return bool(a == b)


def _scenario(kind: str, seed: int) -> Scenario:
    if kind == "targeted":
        return targeted(seed)
    if kind == "drawn":
        return Scenario(hours=26.0)
    if kind == "load":
        return Scenario(hours=26.0, daily_load=0.3)
    return Scenario(hours=24.0, episodes=())


def run() -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[Any]] = {}
    for kind, seed in CASES:
        h = generate(seed, _scenario(kind, seed))
        t0 = time.process_time()
        res = DetectionEngine(EngineConfig()).update(h.tasks, h.resources)
        out[(kind, seed)] = [_rec(a) for a in res.alarms]
        cpu = time.process_time() - t0
        print(f"{kind} {seed}: {len(res.alarms)} alarms, {cpu:.2f} s CPU", flush=True)
    h = generate(1001, Scenario(hours=26.0))
    for name, cfg in (
        ("throughput", EngineConfig(throughput=True)),
        ("run-baseline", EngineConfig(run_baseline_min_tasks=200, burst_holdoff_by_type=True)),
    ):
        out[(name, 1001)] = [
            _rec(a) for a in DetectionEngine(cfg).update(h.tasks, h.resources).alarms
        ]
    # the incremental path: 7-minute chunks, a JSON state round trip after 100 of them
    h = generate(1000, Scenario(hours=26.0))
    engine, alarms, lo, k = DetectionEngine(EngineConfig()), [], h.start_ts, 0
    while lo < h.end_ts:
        tb, rb = h.tasks.between(lo, lo + 420.0), h.resources.between(lo, lo + 420.0)
        alarms += [_rec(a) for a in engine.update(tb, rb, until=lo + 420.0).alarms]
        lo, k = lo + 420.0, k + 1
        if k == 100:
            engine = DetectionEngine.from_state(
                EngineConfig(), json.loads(json.dumps(engine.state()))
            )
    out[("chunked", 1000)] = alarms
    return out


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    out = run()
    if mode == "ref":
        with open(path, "wb") as f:
            pickle.dump(out, f)
        return 0
    with open(path, "rb") as f:
        ref = pickle.load(f)  # our own file, written by `ref` above

    def same(a: Any, b: Any) -> bool:
        if mode == "cmp":
            return a[0] == b[0]
        # the alarm's times exactly; the explanation is the evidence in words, rounded
        exact = ("at", "onset")
        rest = [{k: v for k, v in x[1].items() if k not in (*exact, "explanation")} for x in (a, b)]
        return all(a[1][k] == b[1][k] for k in exact) and _near(*rest)

    bad = [
        key
        for key in ref
        if len(ref[key]) != len(out.get(key, []))
        or not all(same(a, b) for a, b in zip(ref[key], out[key], strict=True))
    ]
    for key in bad:
        print("DIFF", key, len(ref[key]), len(out.get(key, [])))
        for a, b in zip(ref[key], out.get(key, []), strict=False):
            if not same(a, b):
                print(" ref", a[0], "\n new", b[0])
                break
    word = "IDENTICAL" if mode == "cmp" else "EQUAL TO 1e-9"
    print(word if not bad else f"{len(bad)} cases differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
