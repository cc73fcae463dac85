"""The demo's final report: accounting, breaker transitions, alarms scored against the injected
faults, and time to recover (pure: the demo gathers the inputs, this builds and renders them).

Scoring: `scoring` (an alarm is credited to a fault only when its evidence lies in the fault's
window).
Time to recover is, per fault, the time from the fault's end to the component's breaker next
reaching CLOSED (None when it was never open after the fault started, or never closed again).
"""

from __future__ import annotations

from typing import Any

from prefect_ft.demo.ran.scoring import (
    false_alarms,
    observed_in_windows,
    score_alarms,
    spanning_alarms,
)

__all__ = [
    "build_report",
    "false_alarms",
    "observed_in_windows",
    "render",
    "score_alarms",
    "spanning_alarms",
    "time_to_recover",
]


def _open_spans(
    transitions: list[dict[str, Any]], breaker: str, until: float
) -> list[tuple[float, float]]:
    """The times `breaker` was OPEN or HALF_OPEN: [(from, to)], the last one to `until`."""
    spans, since = [], None
    for t in sorted((t for t in transitions if t["breaker"] == breaker), key=lambda t: t["at"]):
        if t["to"] in ("OPEN", "HALF_OPEN") and since is None:
            since = t["at"]
        elif t["to"] not in ("OPEN", "HALF_OPEN") and since is not None:
            spans.append((since, t["at"]))
            since = None
    if since is not None:
        spans.append((since, until))
    return spans


def time_to_recover(
    faults: list[dict[str, Any]], transitions: list[dict[str, Any]]
) -> list[float | None]:
    """Per fault, seconds from its end until its component's breaker let traffic through again.

    Counted for a fault during which the breaker was open: until the breaker left OPEN/HALF_OPEN
    (to RECOVERY, its ramp, or CLOSED). None when the breaker was not open during the fault, or
    was still open at the end.
    """
    out: list[float | None] = []
    for f in faults:
        start, end = f.get("start"), f.get("end")
        if start is None or end is None:
            out.append(None)
            continue
        spans = _open_spans(transitions, f["component"], float("inf"))
        hit = [(a, b) for a, b in spans if a <= end and b >= start]
        out.append(
            round(max(0.0, hit[-1][1] - end), 2) if hit and hit[-1][1] != float("inf") else None
        )
    return out


def build_report(
    summary: dict[str, Any],
    faults: list[dict[str, Any]],
    transitions: list[dict[str, Any]],
    alarms: list[dict[str, Any]] | None,
    recoveries: str | list[dict[str, Any]],
    observed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as data (what `render` prints and the demo saves as `report.json`).

    `recoveries` is the list of recovery records (`RecoveryReport.to_dict()` plus the breaker's
    `opened_at` and the run's `ended_at`), or a sentence saying why none ran. `observed` is the
    detection pass's input (`detection_flow.dump_history`), summarised per fault window.
    """
    runs = recoveries if isinstance(recoveries, list) else []
    dl = summary.get("dead_letters", {})
    lost = len(summary.get("lost", [])) + len(summary.get("documents_lost", []))
    out = summary.get("accepted", 0) + summary.get("rejected_by_quality", 0)
    return {
        "items_in": summary.get("items_in", 0),
        "items_out": out,
        "completed": summary.get("accepted", 0),
        "rejected_by_quality": summary.get("rejected_by_quality", 0),
        "dead_lettered": sum(v["dead_lettered"] for v in dl.values()),
        "replayed": sum(v["replayed"] for v in dl.values()),
        "superseded": sum(v.get("superseded", 0) for v in dl.values()),
        "lost": lost,
        "in_equals_out": lost == 0 and out == summary.get("items_in", 0),
        "documents": {
            "in": summary.get("documents_in", 0),
            "parsed": summary.get("documents_parsed", 0),
            "refused": summary.get("documents_refused", {}),
        },
        "dead_letters_by_component": dl,
        "transitions": transitions,
        "faults": faults,
        "detection": None if alarms is None else score_alarms(faults, alarms, observed=observed),
        "false_alarms": None if alarms is None else false_alarms(faults, alarms, observed=observed),
        "spanning_alarms": (
            None if alarms is None else spanning_alarms(faults, alarms, observed=observed)
        ),
        "alarms": alarms,
        "observed": None if observed is None else observed_in_windows(faults, observed),
        "time_to_recover": time_to_recover(faults, transitions),
        "recoveries": recoveries,
        # a recovery refused the component's lease (another was running) did not run
        "recoveries_run": sum(r.get("outcome") != "refused" for r in runs),
        "recoveries_succeeded": sum(r.get("outcome") == "succeeded" for r in runs),
        "error": summary.get("error"),
    }


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"


def render(report: dict[str, Any], t0: float | None = None) -> str:
    """The report as text; times are shown relative to `t0` when given."""

    def rel(v: float | None) -> str:
        return "-" if v is None else (f"{v - t0:+.1f}s" if t0 is not None else f"{v:.1f}")

    r = report
    lines = ["", "=== RAN pipeline report ==="]
    if r.get("error"):
        lines.append(f"input problem: {r['error']}")
    d = r["documents"]
    lines.append(
        f"documents: {d['in']} in, {d['parsed']} parsed, {len(d['refused'])} refused as bad input"
    )
    lines += [f"  refused {name}: {why}" for name, why in d["refused"].items()]
    lines.append(
        f"items in {r['items_in']}, completed {r['completed']} (+{r['rejected_by_quality']} rejected "
        f"by quality), dead-lettered {r['dead_lettered']}, replayed {r['replayed']}"
        + (f", superseded {r['superseded']}" if r["superseded"] else "")
        + f", lost {r['lost']}"
    )
    lines.append(
        "in == out" if r["in_equals_out"] else f"in != out: {r['items_out']} out of {r['items_in']}"
    )
    lines.append("breaker transitions:")
    lines += [
        f"  {rel(t['at'])} {t['breaker']}: {t['from']} -> {t['to']} ({t['reason']})"
        for t in r["transitions"]
    ] or ["  none"]
    lines.append("injected faults (true start/end), alarms found, time to recover:")
    det = r["detection"] or [None] * len(r["faults"])
    seen = r.get("observed") or [None] * len(r["faults"])
    for f, s, o, ttr in zip(r["faults"], det, seen, r["time_to_recover"], strict=True):
        lines.append(
            f"  {f['kind']} on {f['component']}: {rel(f.get('start'))} .. {rel(f.get('end'))}, "
            f"{f.get('calls_hit', 0)} calls hit; {_found(s)}{_seen(f, s, o)}; "
            f"recovered {_secs(ttr)}"
        )
    lines += _detection_lines(r, rel)
    lines += _recovery_lines(r, rel)
    return "\n".join(lines)


def _found(s: dict[str, Any] | None) -> str:
    if s is None:
        return "detection not run"
    if not s.get("detected"):
        return "not detected"
    on = "" if s["alarm_component"] == s["component"] else f" on {s['alarm_component']}"
    return (
        f"detected: {s['pattern']}{on} ({s['severity']}, {s['failure_type']}) "
        f"after {_secs(s['delay'])}"
    )


def _seen(f: dict[str, Any], s: dict[str, Any] | None, o: dict[str, int] | None) -> str:
    """For an undetected fault: what detection had to go on in its window."""
    if s is None or s.get("detected") or o is None:
        return ""
    extra = ""
    if f["kind"] == "memory_leak":
        n = o["samples"]
        extra = f"; {n} resource sample{'' if n == 1 else 's'}"
    return f" (in its window: {o['task_runs']} task runs, {o['failed']} failed{extra})"


def _detection_lines(r: dict[str, Any], rel: Any) -> list[str]:
    if r["detection"] is None:
        return ["detection: not run"]
    hit = sum(s["detected"] for s in r["detection"])
    fa = r.get("false_alarms") or []
    span = r.get("spanning_alarms") or []
    lines = [
        f"detection: {hit} of {len(r['detection'])} injected faults detected, "
        f"{len(r['alarms'] or [])} alarms, {len(fa)} false alarms (matching no fault), "
        f"{len(span)} spanning several faults (credited to none)"
    ]
    lines += [
        f"  false alarm {rel(a.get('at'))} {a.get('pattern')} on {', '.join(a.get('components', []))}"
        f" ({a.get('severity')}, {a.get('failure_type')})"
        for a in fa
    ]
    lines += [
        f"  spanning alarm {rel(a.get('at'))} {a.get('pattern')} on "
        f"{', '.join(a.get('components', []))}: its failures lie in several faults' windows"
        for a in span
    ]
    return lines


def _recovery_lines(r: dict[str, Any], rel: Any) -> list[str]:
    if not isinstance(r["recoveries"], list):
        return [f"recoveries: {r['recoveries']}"]
    runs = r["recoveries"]
    ran, ok = r["recoveries_run"], r["recoveries_succeeded"]
    head = f"recoveries run: {ran} ({ok} succeeded, {ran - ok} failed)"
    refused = len(runs) - ran
    lines = [head + (f"; {refused} refused (another held the lease)" if refused else "")]
    for rec in runs:
        strategies = ", ".join(dict.fromkeys(a["strategy"] for a in rec.get("attempts", [])))
        head = f"  {rel(rec.get('opened_at'))} {rec['component']} ({rec.get('failure_type') or 'unknown'}): "
        head += f"{strategies or 'nothing run'} {rec.get('outcome')}"
        head += f" by {rec['by']}" if rec.get("by") else ""  # in-process or a served run
        if rec.get("outcome") == "succeeded":
            took = rec["ended_at"] - rec["opened_at"]
            lines.append(
                f"{head}, breaker {rec.get('breaker_before')} -> {rec.get('breaker_after')} "
                f"{took:.1f}s after it opened"
            )
        else:
            lines.append(f"{head}: {rec.get('message')}")
    return lines
