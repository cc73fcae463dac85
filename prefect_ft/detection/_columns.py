"""The engine's column dicts: rows of the open minute and resource samples, as named arrays.

Pure helpers, kept out of `engine.py`: empty columns of the right dtypes, two dicts joined, a
slice of every column, and the earliest start from each row on (what the hang detector needs).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RES_KEYS",
    "ROW_KEYS",
    "concat_columns",
    "empty_columns",
    "slice_columns",
    "suffix_min_start",
]

ROW_KEYS = ("end", "duration", "failed", "code", "comp")
RES_KEYS = ("ts", "comp", "mem", "limit", "cpu")


def empty_columns(keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """No rows: an empty array of each key's dtype (bool, int64 codes and indices, float)."""
    return {
        k: np.empty(
            0, dtype=bool if k == "failed" else np.int64 if k in ("code", "comp") else float
        )
        for k in keys
    }


def concat_columns(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows of `a`, then those of `b`, column by column."""
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def slice_columns(d: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    """Rows `lo:hi` of every column."""
    return {k: v[lo:hi] for k, v in d.items()}


def suffix_min_start(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Earliest start (`end - duration`) among rows `j:` for each `j`, then inf (rows in end
    order; an unknown duration is no start)."""
    start = cols["end"] - cols["duration"]
    start = np.where(np.isfinite(start), start, np.inf)
    return np.concatenate([np.minimum.accumulate(start[::-1])[::-1], [np.inf]])
