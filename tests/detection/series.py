"""Seeded series builders shared by the detection tests."""

from __future__ import annotations

import numpy as np

from prefect_ft.detection import FailureType, TaskRunBatch

T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z


def task_rows(
    rng: np.random.Generator,
    hours: float,
    p_fail,
    *,
    component: int = 0,
    rate: float = 1.0,
    median_s: float = 1.0,
    factor=None,
) -> dict[str, np.ndarray]:
    """Tasks ending at a Poisson rate with failure probability `p_fail(t)` and durations
    log-normal around `median_s * factor(t)` (t in seconds from T0)."""
    n = int(hours * 3600 * rate)
    end = np.sort(rng.uniform(0, hours * 3600, n))
    p = p_fail(end) if callable(p_fail) else np.full(n, p_fail)
    failed = rng.random(n) < p
    f = factor(end) if factor is not None else 1.0
    dur = median_s * f * np.exp(0.35 * rng.standard_normal(n))
    code = np.where(failed, FailureType.CONNECTION_ERROR.code, -1)
    return {
        "end": end + T0,
        "dur": dur,
        "failed": failed,
        "code": code,
        "comp": np.full(n, component),
    }


def batch(components: tuple[str, ...], *parts: dict[str, np.ndarray]) -> TaskRunBatch:
    """One batch from row dicts (any order)."""
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return TaskRunBatch(
        components,
        cat["end"] - cat["dur"],
        cat["end"],
        cat["failed"],
        cat["code"],
        cat["comp"],
        cat["dur"],
    )
