"""The synthetic scenarios the detection benchmark scores: targeted episodes and sweeps.

`targeted` places one episode of each section-6 target (research/detection.md) per history;
`sweep` places many episodes of one pattern per history, to measure its recall with fewer seeds.
Drawn and fault-free scenarios need no helper (`Scenario(hours=...)`). Kept apart from the runner
and the scorer so `detection_identity.py` can rebuild the same histories without either.
"""

from __future__ import annotations

import math

from prefect_ft.detection.synthetic import EpisodeSpec, Scenario

__all__ = ["sweep", "targeted"]


def targeted(seed: int) -> Scenario:
    """Fixed episodes for the section-6 targets (burst 10x/30x, +50 %/60 min, 2x step, ...)."""
    c = seed % 4
    sev = [
        ("burst", c, {"m": 10.0, "D_s": 300.0, "ramp_s": 0.0, "type": 5.0}),
        ("burst", (c + 1) % 4, {"m": 30.0, "D_s": 120.0, "ramp_s": 0.0, "type": 2.0}),
        ("degradation", (c + 2) % 4, {"g": 1.5, "R_s": 3600.0, "hold_s": 1800.0}),
        ("degradation", (c + 3) % 4, {"g": 2.0, "R_s": 0.0, "hold_s": 1800.0}),
        ("cyclic", c, {"P": 300.0, "k": 3.0, "cycles": 12.0, "type": 0.0}),
        ("cascade", seed % 3, {"q": 0.6 + 0.3 * (seed % 2), "D_s": 300.0, "p": 0.9, "type": 5.0}),
        ("exhaustion", [0, 2, 3][seed % 3], {"s_mb_min": [10.0, 30.0][seed % 2]}),
        ("cyclic", (c + 1) % 4, {"P": 900.0, "k": 3.0, "cycles": 12.0, "type": 1.0}),
    ]
    specs, at = [], 2 * 3600.0
    for pattern, comp, params in sev:
        specs.append(EpisodeSpec(pattern, comp, at, tuple(params.items())))
        length = {
            "burst": params.get("D_s", 0),
            "degradation": params.get("R_s", 0) + 1800,
            "cyclic": params.get("P", 0) * 12,
            "cascade": 420.0,
            "exhaustion": 3600.0 * 3.5,
        }[pattern]
        at += length + 2.5 * 3600.0
    return Scenario(hours=math.ceil(at / 3600.0) + 1, episodes=tuple(specs))


def sweep(seed: int, pattern: str) -> Scenario:
    """Many episodes of one pattern per seed, to measure its recall with fewer seeds.

    cyclic: P = 60, 300, 900 and 3600 s, k = 3 (even seeds) or 5 (odd), 12 cycles, types
    Timeout and ResourceExhaustion alternating, the component rotating with the seed.
    cascade: roots 0, 1 and 2 at q = 0.6 and 0.9, bursts of 120 s or 300 s at p = 0.9 or 0.5.
    """
    if pattern == "cyclic":
        k = 3.0 + 2.0 * (seed % 2)
        eps = [
            ("cyclic", (seed + i) % 4, {"P": P, "k": k, "cycles": 12.0, "type": float(i % 2)})
            for i, P in enumerate((60.0, 300.0, 900.0, 3600.0))
        ]
    else:
        eps = [
            (
                "cascade",
                root,
                {
                    "q": q,
                    "D_s": 120.0 + 180.0 * ((seed + root) % 2),
                    "p": 0.9 if (seed + root) % 3 else 0.5,
                    "type": 5.0,
                },
            )
            for q in (0.6, 0.9)
            for root in (0, 1, 2)
        ]
    specs, at = [], 2 * 3600.0
    for pat, comp, params in eps:
        specs.append(EpisodeSpec(pat, comp, at, tuple(params.items())))
        at += (params.get("P", 0.0) * 12 if pat == "cyclic" else 420.0) + 2.5 * 3600.0
    return Scenario(hours=math.ceil(at / 3600.0), episodes=tuple(specs))
