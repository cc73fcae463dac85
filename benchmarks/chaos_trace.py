"""`chaos.py --trace`: what happened after the outage's end, in one run, line by line.

For every setup: each request to the dependency from `end - 0.1 s` until `upto` seconds after
the end (work calls and health checks, who made it: a Prefect task thread, the replayer, the
prober), and for prefect-ft also the readiness announcement and the breaker's transitions. The
line that completes the first 1 s window at 80 % of the pre-fault rate (`back_to_full`) is
marked, so the trace shows what the time to full throughput was spent on.
"""

from __future__ import annotations

from typing import Any


def _who(thread: str) -> str:
    if thread.startswith("ThreadPoolExecutor"):
        return "task " + thread.rsplit("_", 1)[-1]
    if "replay" in thread:
        return thread.replace("prefect-ft-", "")
    if "prober" in thread:
        return "prober"
    return thread


def timeline(
    dep: Any, transitions: list[tuple[float, str]], rate: float, upto: float = 1.0
) -> list[str]:
    """Lines `+0.123 s  what` (seconds after the outage's end) for one run's recovery."""
    end = dep.schedule.down[1]
    lo, hi = end - 0.1, end + upto
    need = 0.8 * rate
    events: list[tuple[float, int, str]] = []
    if dep.announced_at is not None:
        events.append((dep.announced_at, 0, "supervisor announces ready"))
    for t, text in transitions:
        if lo <= t <= hi:
            events.append((t, 1, f"breaker {text}"))
    for (t, ok), who in zip(dep.probes, dep.probers, strict=False):
        if lo <= t <= hi:
            events.append((t, 2, f"health check {'pass' if ok else 'FAIL'} ({_who(who)})"))
    ok_after: list[float] = []
    for (t, ok, item), who in sorted(zip(dep.calls, dep.callers, strict=False)):
        if not lo <= t <= hi:
            continue
        mark = ""
        if ok and t >= end:
            ok_after.append(t)
            in_window = sum(1 for u in ok_after if u > t - 1.0)
            mark = f"  [{in_window} ok in 1 s]"
            if in_window >= need and not any("FULL" in e[2] for e in events):
                mark += f"  <- FULL (>= {need:.1f})"
        events.append((t, 3, f"call {item} {'ok' if ok else 'FAIL'} ({_who(who)}){mark}"))
    events.sort()
    return [f"{t - end:+.3f} s  {text}" for t, _, text in events]


def print_trace(row: dict[str, Any]) -> None:
    print(f"-- {row['setup']} seed {row['seed']}: back to full {row['back_to_full_s']} s")
    for line in row.get("trace", []):
        print("   " + line)
