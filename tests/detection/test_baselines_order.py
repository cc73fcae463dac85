"""`baselines.SlidingOrder`: k-th largest and smallest of a sliding window, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection.baselines import SlidingOrder


@pytest.mark.parametrize("n,k", [(1, 1), (5, 2), (50, 3), (200, 5)])
def test_kth_largest_and_smallest_match_a_sort_of_the_last_n(n, k) -> None:
    rng = np.random.default_rng(n)
    vals = np.round(rng.standard_normal(600) * 3)  # ties on purpose
    so = SlidingOrder(n)
    for i, v in enumerate(vals.tolist()):
        so.push(v)
        last = sorted(vals[max(0, i + 1 - n) : i + 1].tolist())
        kk = min(k, len(last))
        assert so.largest(k) == last[-kk]
        assert so.smallest(k) == last[kk - 1]
    assert so.i == vals.size and len(so.sorted) == n


def test_empty_window_reads_zero() -> None:
    so = SlidingOrder(3)
    assert so.largest(2) == 0.0 and so.smallest(2) == 0.0
