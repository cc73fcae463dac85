"""Alarms scored against the injected faults (pure; used by `report`).

Scoring: an alarm matches a fault when it names a component the fault shows on (its own; a
model-server crash or leak also on `ipc`, the connection pool to that server), its pattern is one the
fault's kind can produce (failures: burst, cascade, cyclic; latency: degradation; a leak:
exhaustion, or failures of type ResourceExhaustion once it reaches its budget and calls are
refused), and its evidence
lies in the fault's window. The window is the fault's true [start, end] widened by `slack`
(2 s: the fault's times come from the injector's clock, the alarm's from task-run end times, and
a failing call's run ends a moment after the injector raised), and at the end also by the
fault's `delay` (a call slowed inside the window ends up to that much later). A per-row alarm
(burst, cascade, cyclic) fires on a row, so that row must lie in the window; and when the
detection pass's input is given (`observed`), most of the failed rows of its episode (from its
onset to the moment it fired, on its components) must lie there too: an episode that the
fault's failures merely ended is another cause's. A per-minute alarm (degradation, exhaustion)
needs its episode, from onset to firing, to overlap the window. The delay is from the fault's
true start to the first alarm credited to it; one alarm is credited to one fault (its own
component's before one merely seen there, then the earliest started). An alarm matching no
fault is a false alarm, unless it spans faults: a per-row alarm whose row lies in one fault's
window and whose failed rows all lie in the windows of the faults on its components (a model
burst's failures and the crash's first failed call, together the count the burst chart needs).
It is credited to none (its delay would be another fault's) and is listed apart.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PATTERNS_OF",
    "SEEN_ON",
    "SLACK_S",
    "false_alarms",
    "observed_in_windows",
    "score_alarms",
    "spanning_alarms",
]

SLACK_S = 2.0
_FAILING = frozenset({"burst", "cascade", "cyclic"})
PATTERNS_OF: dict[str, frozenset[str]] = {
    "error_burst": _FAILING,
    "periodic": _FAILING,
    "crash": _FAILING,
    "drop_connections": _FAILING,
    "latency": frozenset({"degradation"}),
    # and once it reaches its budget, failures of type ResourceExhaustion (`_matches`)
    "memory_leak": frozenset({"exhaustion"}),
}
# where a fault shows besides its own component: the model server's crash fails the connections
# and a leaking model server's refusals (507) fail the connection pool's calls too
SEEN_ON: dict[tuple[str, str], tuple[str, ...]] = {
    ("ml-inference", "crash"): ("ipc",),
    ("ml-inference", "memory_leak"): ("ipc",),
}


def _shows_on(f: dict[str, Any]) -> tuple[str, ...]:
    return (f["component"], *SEEN_ON.get((f["component"], f["kind"]), ()))


def _explains(f: dict[str, Any], a: dict[str, Any]) -> bool:
    """A leak explains refusals for resources better than any other fault does."""
    return f["kind"] == "memory_leak" and a.get("failure_type") == "ResourceExhaustion"


def _window(f: dict[str, Any], slack: float) -> tuple[float, float] | None:
    start, end = f.get("start"), f.get("end")
    if start is None:
        return None
    end = end if end is not None else start
    delay = float((f.get("params") or {}).get("delay", 0.0)) if f["kind"] == "latency" else 0.0
    return start - slack, end + slack + delay


def _failed_rows(observed: dict[str, Any] | None, comps: list[str]) -> list[float] | None:
    """End times of the failed rows on `comps` in the pass's input (None: no input)."""
    if observed is None:
        return None
    names = list(observed.get("components", []))
    want = {names.index(c) for c in comps if c in names}
    tasks = observed.get("tasks", {})
    cols = (tasks.get("end", []), tasks.get("component", []), tasks.get("failed", []))
    return [t for t, c, bad in zip(*cols, strict=True) if bad and c in want]


def _matches(
    f: dict[str, Any], a: dict[str, Any], slack: float, failed: list[float] | None = None
) -> bool:
    win = _window(f, slack)
    at = a.get("at")
    if win is None or at is None:
        return False
    lo, hi = win
    comps = _shows_on(f)
    pattern = str(a.get("pattern"))
    allowed = PATTERNS_OF.get(f["kind"], _FAILING)
    if f["kind"] == "memory_leak" and a.get("failure_type") == "ResourceExhaustion":
        allowed = allowed | _FAILING  # a leak at its budget: the model server refuses (507)
    if not (any(c in a.get("components", ()) for c in comps) and pattern in allowed):
        return False
    onset = a.get("onset") if a.get("onset") is not None else at
    if pattern not in _FAILING:  # a per-minute detector: its episode overlaps the window
        return at >= lo and onset <= hi
    if not lo <= at <= hi:  # the row it fired on
        return False
    if failed is None:
        return True
    mine = [t for t in failed if onset <= t <= at]
    return 2 * sum(lo <= t <= hi for t in mine) >= len(mine)


def _spans(
    faults: list[dict[str, Any]], a: dict[str, Any], slack: float, failed: list[float] | None
) -> bool:
    """An unmatched per-row alarm whose every failed row lies in some fault's window on its
    components, its own row in one of them (needs the pass's input)."""
    at, comps = a.get("at"), a.get("components", ())
    if failed is None or at is None or str(a.get("pattern")) not in _FAILING:
        return False
    wins = [
        w
        for f in faults
        if str(a.get("pattern")) in PATTERNS_OF.get(f["kind"], _FAILING)
        and any(c in comps for c in _shows_on(f))
        and (w := _window(f, slack)) is not None
    ]
    onset = a.get("onset") if a.get("onset") is not None else at
    mine = [t for t in failed if onset <= t <= at]
    inside = lambda t: any(lo <= t <= hi for lo, hi in wins)  # noqa: E731
    return bool(mine) and inside(at) and all(inside(t) for t in mine)


def _assign(
    faults: list[dict[str, Any]],
    alarms: list[dict[str, Any]],
    slack: float,
    observed: dict[str, Any] | None = None,
) -> list[int]:
    """Per alarm, the index of the one fault it is credited to (-1: none, a false alarm; -2:
    none, its evidence spans several faults).

    One alarm detects one fault: among the faults it matches, a leak explaining refusals for
    resources wins, then one on the alarm's own component over one merely seen there, then the
    earliest started."""
    out = []
    for a in alarms:
        failed = _failed_rows(observed, list(a.get("components", ())))
        cands = [i for i, f in enumerate(faults) if _matches(f, a, slack, failed)]
        own = [i for i in cands if faults[i]["component"] in a.get("components", ())]
        pool = [i for i in cands if _explains(faults[i], a)] or own or cands
        if pool:
            out.append(min(pool, key=lambda i: (faults[i]["start"], i)))
        else:
            out.append(-2 if _spans(faults, a, slack, failed) else -1)
    return out


def score_alarms(
    faults: list[dict[str, Any]],
    alarms: list[dict[str, Any]],
    slack: float = SLACK_S,
    observed: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per fault: detected or not, and the first credited alarm's delay, pattern, failure type,
    severity and component (the credited alarms' patterns are listed in `alarms`); `observed`
    is the detection pass's input (`detection_flow.dump_history`), for the alarms' evidence."""
    credit = _assign(faults, alarms, slack, observed)
    out = []
    for i, f in enumerate(faults):
        hits = sorted(
            (a for a, c in zip(alarms, credit, strict=True) if c == i), key=lambda a: a["at"]
        )
        first = hits[0] if hits else {}
        out.append(
            {
                "component": f["component"],
                "kind": f["kind"],
                "detected": bool(hits),
                "alarms": [str(a.get("pattern")) for a in hits],
                "delay": round(max(0.0, first["at"] - f["start"]), 2) if hits else None,
                "pattern": first.get("pattern"),
                "failure_type": first.get("failure_type"),
                "severity": first.get("severity"),
                "alarm_component": (first.get("components") or [None])[0],
            }
        )
    return out


def _credited_to(
    code: int,
    faults: list[dict[str, Any]],
    alarms: list[dict[str, Any]],
    slack: float,
    observed: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    credit = _assign(faults, alarms, slack, observed)
    return [a for a, c in zip(alarms, credit, strict=True) if c == code]


def false_alarms(
    faults: list[dict[str, Any]],
    alarms: list[dict[str, Any]],
    slack: float = SLACK_S,
    observed: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The alarms that match no injected fault and span none."""
    return _credited_to(-1, faults, alarms, slack, observed)


def spanning_alarms(
    faults: list[dict[str, Any]],
    alarms: list[dict[str, Any]],
    slack: float = SLACK_S,
    observed: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The alarms credited to no fault whose failures all lie in injected faults' windows."""
    return _credited_to(-2, faults, alarms, slack, observed)


def observed_in_windows(
    faults: list[dict[str, Any]], observed: dict[str, Any], slack: float = SLACK_S
) -> list[dict[str, int] | None]:
    """Per fault, what the detection pass read in its window (widened by `slack`) on the
    components it shows on: task runs, failed ones, and resource samples; None for a fault that
    never started. `observed` is the pass's input as `detection_flow.dump_history` wrote it.

    Why a fault went undetected is mostly here: a fault no call saw leaves no failed run."""
    comps = list(observed.get("components", []))
    tasks, res = observed.get("tasks", {}), observed.get("resources", {})
    cols = (tasks.get("end", []), tasks.get("component", []), tasks.get("failed", []))
    rows = list(zip(*cols, strict=True))
    samples = list(zip(res.get("ts", []), res.get("component", []), strict=True))
    out: list[dict[str, int] | None] = []
    for f in faults:
        start, end = f.get("start"), f.get("end")
        if start is None:
            out.append(None)
            continue
        lo, hi = start - slack, (end if end is not None else start) + slack
        mine = {comps.index(c) for c in _shows_on(f) if c in comps}
        hit = [bad for t, c, bad in rows if c in mine and lo <= t <= hi]
        out.append(
            {
                "task_runs": len(hit),
                "failed": sum(bool(b) for b in hit),
                "samples": sum(1 for t, c in samples if c in mine and lo <= t <= hi),
            }
        )
    return out
