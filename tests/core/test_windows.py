"""Sliding windows: exact totals with eviction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefect_ft.core import CountWindow, TimeWindow
from prefect_ft.exceptions import ConfigurationError


@given(st.integers(1, 20), st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200))
def test_count_window_equals_the_last_n(size: int, outcomes: list[tuple[bool, bool]]) -> None:
    w = CountWindow(size)
    for failed, slow in outcomes:
        w.record(failed, slow, 0.0)
    tail = outcomes[-size:]
    c = w.counts(0.0)
    assert (c.calls, c.failures, c.slow) == (
        len(tail),
        sum(f for f, _ in tail),
        sum(s for _, s in tail),
    )


@given(
    st.integers(1, 10),
    st.lists(st.tuples(st.floats(0, 3), st.booleans(), st.booleans()), max_size=100),
)
def test_time_window_equals_the_last_seconds(seconds: int, steps: list) -> None:
    w = TimeWindow(seconds)
    now = 100.0
    seen: list[tuple[float, bool, bool]] = []
    for dt, failed, slow in steps:
        now += dt
        w.record(failed, slow, now)
        seen.append((now, failed, slow))
    head = int(now // 1)
    inside = [s for s in seen if int(s[0] // 1) > head - seconds]
    c = w.counts(now)
    assert (c.calls, c.failures, c.slow) == (
        len(inside),
        sum(f for _, f, _ in inside),
        sum(s for _, _, s in inside),
    )


def test_time_window_empties_after_silence() -> None:
    w = TimeWindow(5)
    w.record(True, False, 10.0)
    assert w.counts(14.9).calls == 1
    assert w.counts(15.0).calls == 0


@pytest.mark.parametrize("cls", [CountWindow, TimeWindow])
def test_window_of_size_zero_is_refused(cls) -> None:
    with pytest.raises(ConfigurationError, match="window size must be >= 1"):
        cls(0)
