"""What chaos.py's rows add up to: the medians table and the targets, and what became of each
lost item (its dead letter's status)."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["dead_letters", "lost_by_dead_letter", "report"]


def lost_by_dead_letter(lost: set[int], letters: list[tuple[int, str]]) -> dict[str, int]:
    """What became of each lost item: its latest dead letter's status (`letters`, (item, status)
    in queue order), or "no dead letter"; status -> count."""
    latest = {item: status for item, status in letters if item in lost}
    out: dict[str, int] = {}
    for item in sorted(lost):
        status = latest.get(item, "no dead letter")
        out[status] = out.get(status, 0) + 1
    return out


def dead_letters(name: str) -> list[tuple[int, str]]:
    """(item, status) of every dead letter the breaker `name` still keeps, in queue order."""
    from prefect_ft.deadletter.queue import DeadLetterQueue

    out = []
    for letter in DeadLetterQueue(name).all_items():
        try:
            out.append((int(letter.inputs()[0][0]), letter.status))
        except (ValueError, IndexError, TypeError):  # unreadable inputs: keep the status
            out.append((-1, letter.status))
    return out


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def report(rows: list[dict[str, Any]], setups: list[str]) -> None:
    keys = ("goodput_per_min", "work_calls_while_down", "probes_while_down", "requests_while_down", "lost", "back_to_full_s", "wall_s")  # fmt: skip
    print("| setup | goodput/min | work calls while down | probes while down | requests while down (work + probes) | lost | back to full (s) | wall (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    med = {s: {k: _median([r for r in rows if r["setup"] == s], k) for k in keys} for s in setups}
    for s in setups:
        cells = " | ".join("never" if med[s][k] is None else f"{med[s][k]:g}" for k in keys)
        print(f"| {s} | {cells} |")
    if "prefect-ft" not in med:
        return
    ft = med["prefect-ft"]
    print()
    print(f"prefect-ft lost {ft['lost']:g} (target 0): {'met' if ft['lost'] == 0 else 'NOT met'}")
    for other in (s for s in ("retries", "pybreaker") if s in med):
        o = med[other]
        for label, mine, theirs in (
            ("work calls while down", ft["work_calls_while_down"], o["work_calls_while_down"]),
            ("all requests while down (work + probes)",
             ft["requests_while_down"], o["requests_while_down"]),
        ):  # fmt: skip
            fewer = 100.0 * (1 - mine / theirs) if theirs else 0.0
            goal = " (target >= 90 % fewer than retries: " + ("met)" if fewer >= 90 else "NOT met)") if other == "retries" else ""  # fmt: skip
            print(f"{label}: {mine:g} vs {other} {theirs:g}, {fewer:.0f} % fewer{goal}")
        a, b = ft["back_to_full_s"], o["back_to_full_s"]
        if a is None or b is None:
            print(f"back to full: prefect-ft {a} s vs {other} {b} s (target 2x sooner: NOT met)")
        else:
            x = b / a if a > 0 else float("inf")
            ok = "met" if x >= 2 else "NOT met"
            print(f"back to full: prefect-ft {a:g} s vs {other} {b:g} s, {x:.2f}x sooner (target 2x: {ok})")  # fmt: skip
