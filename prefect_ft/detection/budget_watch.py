"""`BudgetWatch`: time to exhaustion for samples of a process that carries its own budget.

A model server's active memory against the budget it enforces: the limit travels with each
sample, and a leak growing to its budget is a trend to exhaustion whatever the machine's memory.
It fits the raw samples as they arrive, not 3-minute floors closed per minute, so a run of
minutes can show one (`EngineConfig.sample_exhaustion`). The fit is `exhaustion.time_to_limit`
(Theil-Sen with a pessimistic bound) on the whole window and its recent half.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from prefect_ft.detection._state import NEVER
from prefect_ft.detection.alarms import Alarm
from prefect_ft.detection.exhaustion import exhaustion_alarm, time_to_limit
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["BUDGET_POINTS", "BudgetWatch"]

BUDGET_POINTS = 32  # raw samples a budget fit looks back over (a recent half of >= 8 needs 16)


class BudgetWatch:
    """Time to exhaustion of each component's memory against the limit its samples carry,
    judged on the raw samples as they arrive (a run of minutes has no minute floors to fit).

    A sample's limit is its process's own budget when it has one (a model server enforcing a
    memory budget reports both), else what `history.resources` detected. Per component, the
    last `BUDGET_POINTS` samples (within `exh_window_s`) are fitted with Theil-Sen
    (`time_to_limit`); the alarm needs the whole window's and its recent half's slopes both
    significantly positive (a leak is a sustained rise: a load step that has ended has a flat
    recent half), a rise over the fit of more than `exh_min_ratio` noise scales, and the
    pessimistic time to the limit, from the recent half (the window may reach back before the
    leak began), under `exh_horizon_s`. The same thresholds as the minute tracker; one alarm per
    component per `holdoff_s`. Samples of one component are assumed to come from one process
    (as `history.resources` notes, several processes interleave their series).
    """

    __slots__ = ("hold_until", "names", "pts", "th")

    def __init__(self, names: Sequence[str], th: Thresholds) -> None:
        self.names = tuple(names)
        self.th = th
        self.pts: list[deque[list[float]]] = [deque(maxlen=BUDGET_POINTS) for _ in self.names]
        self.hold_until = [NEVER] * len(self.names)

    def state(self) -> dict[str, Any]:
        return {"pts": [list(map(list, q)) for q in self.pts], "hold_until": list(self.hold_until)}

    def load(self, data: dict[str, Any]) -> None:
        for q, saved in zip(self.pts, data.get("pts", []), strict=False):
            q.extend([float(v) for v in p] for p in saved)
        for i, h in enumerate(data.get("hold_until", [])[: len(self.hold_until)]):
            self.hold_until[i] = float(h)

    def observe(
        self, ts: np.ndarray, comp: np.ndarray, mem: np.ndarray, limit: np.ndarray
    ) -> list[Alarm]:
        """Feed samples (sorted by time; `comp` indexes `names`); the alarms they raise."""
        out = []
        for t, c, x, lim in zip(
            ts.tolist(), comp.tolist(), mem.tolist(), limit.tolist(), strict=True
        ):
            if not (math.isfinite(x) and math.isfinite(lim) and lim > 0):
                continue
            q = self.pts[int(c)]
            q.append([t, x, lim])
            while q and q[0][0] < t - self.th.exh_window_s:
                q.popleft()
            alarm = self._judge(int(c), t)
            if alarm is not None:
                out.append(alarm)
        return out

    def _judge(self, c: int, now: float) -> Alarm | None:
        q, th = self.pts[c], self.th
        if len(q) < 16 or now < self.hold_until[c]:
            return None
        arr = np.asarray(q, dtype=float)
        t, x, limit = arr[:, 0], arr[:, 1], float(arr[-1, 2])
        k = t.size // 3
        if x[-k:].mean() <= x[:k].mean():  # cheap gate: no rise, no fit
            return None
        full = time_to_limit(t, x, limit, now, th.exh_alpha)
        half = t.size // 2
        est = time_to_limit(t[half:], x[half:], limit, now, th.exh_alpha)
        if full is None or est is None or full.slope_lo <= 0 or est.slope_lo <= 0:
            return None
        rise = est.slope * (t[-1] - t[half])
        if est.tte_lo_s >= th.exh_horizon_s or rise <= th.exh_min_ratio * max(
            est.noise, 1e-9 * limit
        ):
            return None
        self.hold_until[c] = now + th.holdoff_s
        base = float(np.median(x[:k]))
        onset = min(now, max(float(t[0]), now - max(0.0, est.level - base) / est.slope))
        name = self.names[c]
        explanation = (
            f"{name}: memory at {est.level:.0f} MB rising {est.slope * 60:.1f} MB/min "
            f"against its budget of {limit:.0f} MB: the budget in {est.tte_s:.0f} s "
            f"(pessimistic {est.tte_lo_s:.0f} s)"
        )
        return exhaustion_alarm(name, est, onset, now, est.level, limit, False, explanation)
