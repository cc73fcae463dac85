"""The engine's full-pass bookkeeping hands every detector exactly the rows it masked out before."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection._split import FailureTimes, by_component
from prefect_ft.detection.trend import mann_kendall_z, theil_sen_slope


def _rows(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dur = rng.exponential(2.0, n)
    dur[rng.random(n) < 0.05] = np.nan
    dur[rng.random(n) < 0.05] = 0.0
    return {
        "end": np.sort(rng.uniform(0.0, 600.0, n)),
        "duration": dur,
        "failed": rng.random(n) < 0.2,
        "code": rng.integers(0, 7, n),
        "comp": rng.integers(0, 4, n),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_segments_equal_the_per_minute_masks(seed: int) -> None:
    rows = _rows(seed, 500)
    bounds = 60.0 * np.arange(1, 10)
    edges = np.concatenate([[0.0], bounds])
    parts = by_component(rows, "end", 4, edges, lists=True, valid=True)
    # segment i: before edges[i], at or after edges[i - 1] (0: before the first edge)
    cut = [0, *np.searchsorted(rows["end"], edges, "left").tolist(), rows["end"].size]
    for i in range(len(cut) - 1):
        sl = {k: v[cut[i] : cut[i + 1]] for k, v in rows.items()}
        for c, part in enumerate(parts):
            mine = sl["comp"] == c
            lo, hi = part.span(i)
            assert part.lists["end"][lo:hi] == sl["end"][mine].tolist()
            assert part.lists["failed"][lo:hi] == sl["failed"][mine].tolist()
            assert part.lists["code"][lo:hi] == sl["code"][mine].tolist()
            dur = sl["duration"][mine & ~sl["failed"]]
            dur = dur[np.isfinite(dur) & (dur > 0)]
            got = part.cols["duration"][lo:hi][part.cols["valid"][lo:hi]]
            assert got.tolist() == dur.tolist()
            flo, fhi = part.failed_span(i)
            failed = mine & sl["failed"]
            assert part.fail_end[flo:fhi] == sl["end"][failed].tolist()
            assert part.fail_code[flo:fhi] == sl["code"][failed].tolist()


def test_split_of_an_empty_batch_has_empty_segments() -> None:
    empty = {k: v[:0] for k, v in _rows(0, 5).items()}
    parts = by_component(empty, "end", 4, np.array([60.0, 120.0]), lists=True, valid=True)
    assert [p.span(i) for p in parts for i in range(3)] == [(0, 0)] * 12


class _Tracker:
    def __init__(self, times: list[float]) -> None:
        self.times = times


def test_failure_times_builds_arrays_on_read_and_rejects_unknown_components() -> None:
    trackers = [_Tracker([1.0, 2.0]), _Tracker([])]
    failures = FailureTimes(trackers)
    assert failures[0].tolist() == [1.0, 2.0]
    assert failures[1].size == 0
    assert list(failures) == [0, 1] and len(failures) == 2
    sentinel = np.empty(0)
    assert failures.get(7, sentinel) is sentinel
    assert failures.get(-1, sentinel) is sentinel


def test_cached_trend_pairs_give_the_same_statistics_and_stay_read_only() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=40).cumsum()
    t = np.arange(40.0)
    i, j = np.triu_indices(40, 1)
    s = float(np.sign(x[j] - x[i]).sum())
    var = 40 * 39 * 85 / 18.0
    assert mann_kendall_z(x) == pytest.approx((s - np.sign(s)) / np.sqrt(var), rel=0, abs=0)
    first = theil_sen_slope(t, x)
    assert theil_sen_slope(t, x) == first  # the second call reads the cached pairs
    from prefect_ft.detection.trend import _pairs

    with pytest.raises(ValueError):
        _pairs(40)[0][0] = 5
