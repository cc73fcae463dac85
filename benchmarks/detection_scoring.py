"""Scoring and tables of the detection benchmark (research/detection.md sections 5 and 6).

Per pattern: recall, delay from onset (median, p90), failure-type and severity accuracy; false
alarms per fault-free hour, per detector instance and system-wide, where fault-free excludes the
warm-up, each episode from a minute before its onset to an hour after its end, and maintenance
windows. Reads only the plain results of `detection_runner.py`, so the calibration scores the
same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "BUDGET_PER_INSTANCE_H",
    "GRACE_S",
    "INSTANCES",
    "PATTERNS",
    "WARMUP_S",
    "excluded",
    "fault_free",
    "group_key",
    "hit_of",
    "pct",
    "score",
    "table",
]

PATTERNS = ("burst", "degradation", "exhaustion", "cyclic", "cascade")
# detector instances per pattern (4 components; exhaustion watches memory and CPU; one cascade)
INSTANCES = {"burst": 4, "degradation": 4, "exhaustion": 8, "cyclic": 4, "cascade": 1}
BUDGET_PER_INSTANCE_H = 0.002
WARMUP_S = 2 * 3600.0
GRACE_S = 3600.0


def excluded(res: dict[str, Any]) -> list[tuple[float, float]]:
    spans = [(res["start"], res["start"] + WARMUP_S)]
    for e in res["episodes"]:
        if e["pattern"] in PATTERNS:
            spans.append((e["onset"] - 60.0, e["end"] + GRACE_S))
        elif e["pattern"] == "maintenance":
            spans.append((e["onset"], e["end"]))
    return spans


def fault_free(res: dict[str, Any], run: dict[str, Any]) -> tuple[float, list[dict[str, Any]]]:
    """Fault-free hours of a run and the alarms that fell in them (false alarms)."""
    spans = sorted(excluded(res))
    covered, cur_lo, cur_hi = 0.0, None, None
    for lo, hi in spans:
        lo, hi = max(lo, res["start"]), min(hi, res["end"])
        if cur_hi is None or lo > cur_hi:
            covered += 0.0 if cur_hi is None else cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    covered += 0.0 if cur_hi is None else cur_hi - cur_lo
    hours = (res["end"] - res["start"] - covered) / 3600.0
    fas = [a for a in run["alarms"] if not any(lo <= a["at"] <= hi for lo, hi in spans)]
    return hours, fas


def hit_of(e: dict[str, Any], alarms: list[dict[str, Any]]) -> dict[str, Any] | None:
    p, on, comps = e["params"], e["onset"], e["components"]
    for a in alarms:
        if a["pattern"] != e["pattern"] or a["at"] < on:
            continue
        if e["pattern"] == "cascade":
            if a["at"] <= e["end"] + 600 and a["components"] == comps:
                return a
            continue
        if a["components"][0] != comps[0]:
            continue
        if e["pattern"] == "burst" and a["at"] <= on + min(p["D_s"], 300.0):
            return a
        if e["pattern"] == "degradation" and a["at"] <= on + p["R_s"] + 1800.0:
            return a
        if e["pattern"] == "exhaustion" and a["at"] < e["end"]:
            return a
        if (
            e["pattern"] == "cyclic"
            and a["at"] <= e["end"]
            and abs(a["evidence"]["period_s"] / p["P"] - 1) <= 0.05
        ):
            return a
    return None


def group_key(e: dict[str, Any]) -> str:
    p = e["params"]
    return {
        "burst": lambda: f"m={p['m']:g}",
        "degradation": lambda: f"g={p['g']:g} R={p['R_s'] / 60:g}m",
        "exhaustion": lambda: (
            f"{p['s_mb_min']:g} MB/min" if "s_mb_min" in p else f"cpu {p['x_pct_min']:g}%/min"
        ),
        "cyclic": lambda: f"P={p['P']:g} k={p['k']:g}",
        "cascade": lambda: f"q={p['q']:g}",
    }[e["pattern"]]()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else math.nan


def score(results: list[dict[str, Any]], run_index: int = 0) -> dict[str, Any]:
    rows: dict[tuple[str, str], dict[str, list[Any]]] = {}
    fa_hours, fas = 0.0, []
    for res in results:
        run = res["runs"][run_index]
        hours, fa = fault_free(res, run)
        fa_hours += hours
        fas += fa
        for e in res["episodes"]:
            if e["pattern"] not in PATTERNS:
                continue
            for key in (group_key(e), "all"):
                r = rows.setdefault(
                    (e["pattern"], key),
                    {
                        k: []
                        for k in (
                            "hit",
                            "delay",
                            "delay_det",
                            "type_ok",
                            "sev_ok",
                            "lead",
                            "tte_err",
                            "detected_any",
                        )
                    },
                )
                a = hit_of(e, run["alarms"])
                r["hit"].append(a is not None)
                r["detected_any"].append(
                    any(
                        x["pattern"] == e["pattern"] and e["onset"] <= x["at"] <= e["end"] + GRACE_S
                        for x in run["alarms"]
                    )
                )
                if a is None:
                    continue
                r["delay"].append(a["at"] - e["onset"])
                r["delay_det"].append(a["at"] - e["detectable"])
                r["type_ok"].append(a["failure_type"] == e["type"])
                r["sev_ok"].append(a["severity"] == e["severity"])
                if e["pattern"] == "exhaustion":
                    lead = e["end"] - a["at"]
                    r["lead"].append(lead)
                    r["tte_err"].append(abs(a["evidence"]["tte_s"] - lead) / max(lead, 1.0))
    per_pattern_fa = {p: sum(1 for a in fas if a["pattern"] == p) for p in PATTERNS}
    return {
        "rows": rows,
        "fa_hours": fa_hours,
        "fas": fas,
        "per_pattern_fa": per_pattern_fa,
        "seconds": [
            r["runs"][run_index]["seconds"] / ((r["end"] - r["start"]) / 86400.0) for r in results
        ],
    }


def table(title: str, s: dict[str, Any]) -> str:
    out = [
        f"### {title}",
        "",
        "| pattern | episodes | recall | detected (any time) | median delay s | p90 delay s | "
        "type acc | severity acc | extra |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (pattern, key), r in sorted(
        s["rows"].items(), key=lambda kv: (PATTERNS.index(kv[0][0]), kv[0][1] != "all", kv[0][1])
    ):
        n = len(r["hit"])
        extra = ""
        if pattern == "exhaustion" and r["lead"]:
            extra = (
                f"lead median {np.median(r['lead']) / 60:.0f} min, min "
                f"{min(r['lead']) / 60:.0f} min; TTE err median {np.median(r['tte_err']):.1%}"
            )
        if pattern == "cyclic" and r["delay_det"]:
            extra = f"delay from detectable (onset+8P) median {np.median(r['delay_det']):.0f} s"
        out.append(
            f"| {pattern} | {key} ({n}) | {np.mean(r['hit']):.0%} | {np.mean(r['detected_any']):.0%} | "
            f"{pct(r['delay'], 50):.0f} | {pct(r['delay'], 90):.0f} | "
            f"{np.mean(r['type_ok']) if r['type_ok'] else math.nan:.0%} | "
            f"{np.mean(r['sev_ok']) if r['sev_ok'] else math.nan:.0%} | {extra} |"
        )
    h = s["fa_hours"]
    out += [
        "",
        f"Fault-free hours: {h:.0f}. False alarms: {len(s['fas'])} system-wide = "
        f"{len(s['fas']) / h * 24:.2f} per day.",
        "",
        "| detector | false alarms | per hour per instance (budget 0.002) |",
        "|---|---|---|",
    ]
    for p in PATTERNS:
        k = s["per_pattern_fa"][p]
        out.append(f"| {p} (x{INSTANCES[p]}) | {k} | {k / h / INSTANCES[p]:.4f} |")
    sec = s["seconds"]
    out += [
        "",
        f"Full pass, seconds per 24 h of history: median {np.median(sec):.2f}, max {max(sec):.2f}",
        "",
    ]
    return "\n".join(out)
