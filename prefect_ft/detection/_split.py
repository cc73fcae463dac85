"""Bookkeeping for the engine's full passes: a batch split by component, failure arrays on demand.

Pure helpers, kept out of `engine.py` so it stays readable; they change how the engine gets at
its rows, never which rows a detector sees (the alarms are identical, checked against the
previous code on targeted, drawn, daily-load and fault-free histories).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["FailureTimes", "Split", "by_component"]


class _HasTimes(Protocol):
    times: list[float]


class Split:
    """One component's rows of a batch (time order kept), cut at minute bounds.

    Segment `i` is the rows before `bounds[i]` and at or after `bounds[i - 1]` (segment
    `len(bounds)` is the rest), exactly what `searchsorted(..., side="left")` cut the whole
    batch into before.
    """

    __slots__ = ("cols", "cuts", "fail_code", "fail_cuts", "fail_end", "lists")

    def __init__(
        self,
        d: dict[str, np.ndarray],
        key: str,
        idx: np.ndarray,
        bounds: np.ndarray,
        lists: bool,
        valid: bool,
    ) -> None:
        self.cols = {k: v[idx] for k, v in d.items()}
        t = self.cols[key]
        self.cuts = np.concatenate([[0], np.searchsorted(t, bounds, "left"), [t.size]]).tolist()
        self.lists: dict[str, list[Any]] = {}
        self.fail_end: list[float] = []
        self.fail_code: list[int] = []
        self.fail_cuts = self.cuts
        if valid:  # the latencies the degradation detector reads
            dur = self.cols["duration"]
            self.cols["valid"] = ~self.cols["failed"] & np.isfinite(dur) & (dur > 0)
        if lists:  # what the burst and cyclic trackers are fed, as Python lists
            failed = self.cols["failed"]
            self.lists = {k: self.cols[k].tolist() for k in ("end", "failed", "code")}
            self.fail_end = t[failed].tolist()
            self.fail_code = self.cols["code"][failed].tolist()
            fc = np.concatenate([[0], np.cumsum(failed)]).astype(np.int64)
            self.fail_cuts = fc[self.cuts].tolist()

    def span(self, i: int) -> tuple[int, int]:
        return self.cuts[i], self.cuts[i + 1]

    def failed_span(self, i: int) -> tuple[int, int]:
        return self.fail_cuts[i], self.fail_cuts[i + 1]


def by_component(
    d: dict[str, np.ndarray],
    key: str,
    n: int,
    bounds: np.ndarray,
    *,
    lists: bool = False,
    valid: bool = False,
) -> list[Split]:
    """Split `d` (sorted by `key`) into `n` components, each cut at `bounds`; `lists` adds the
    burst/cyclic feeds, `valid` the usable-latency mask (task rows only)."""
    order = np.argsort(d["comp"], kind="stable")
    cuts = np.searchsorted(d["comp"][order], np.arange(n + 1), "left")
    return [Split(d, key, order[cuts[c] : cuts[c + 1]], bounds, lists, valid) for c in range(n)]


class FailureTimes(Mapping[int, np.ndarray]):
    """Each component's failure times as an array, built only when read.

    The cascade tracker reads them only while a burst group has settled (a few minutes a
    day); converting four lists of up to 12 h of failures every minute was ~5 % of a pass.
    """

    __slots__ = ("_cache", "_cyc")

    def __init__(self, cyc: Sequence[_HasTimes]) -> None:
        self._cyc = cyc
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, c: int) -> np.ndarray:
        if not (isinstance(c, int) and 0 <= c < len(self._cyc)):
            raise KeyError(c)
        if c not in self._cache:
            self._cache[c] = np.asarray(self._cyc[c].times)
        return self._cache[c]

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._cyc)))

    def __len__(self) -> int:
        return len(self._cyc)
