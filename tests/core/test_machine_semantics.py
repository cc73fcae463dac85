"""Issue 8 items 1, 4 and 5 at the level of the pure machine: trips, late probes, Retry-After."""

from __future__ import annotations

import math

import pytest

from prefect_ft.core import (
    BreakerConfig,
    BreakerRecord,
    ConsecutiveFailures,
    WindowCounts,
    admit,
    on_outcome,
)
from prefect_ft.core.classify import retry_after_of
from prefect_ft.core.cooldown import open_duration


def cfg(**kw) -> BreakerConfig:
    kw.setdefault("trip", ConsecutiveFailures(3))
    kw.setdefault("open_seconds", 10.0)
    return BreakerConfig("dep", **kw)


def trip(c: BreakerConfig, now: float = 0.0) -> BreakerRecord:
    r = BreakerRecord()
    while r.state == "CLOSED":
        r = on_outcome(r, c, now, "failure", counts=WindowCounts(100, 100, 100)).record
    return r


# -- item 5: Retry-After is capped, finite, and does not bypass the threshold ------------------
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, -1.0, True, "5"])
def test_retry_after_of_refuses_non_finite_and_bogus_hints(value: object) -> None:
    exc = Exception()
    exc.retry_after = value  # type: ignore[attr-defined]
    assert retry_after_of(exc) is None


def test_retry_after_of_keeps_a_finite_hint() -> None:
    exc = Exception()
    exc.retry_after = 86400  # type: ignore[attr-defined]
    assert retry_after_of(exc) == 86400.0


@pytest.mark.parametrize("hint", [86400.0, math.inf])
def test_open_duration_caps_or_refuses_the_hint(hint: float) -> None:
    d = open_duration(10.0, 2.0, 600.0, 0.0, 1, 0.5, hint)
    assert d == (600.0 if math.isfinite(hint) else 10.0)
    assert math.isfinite(d)


def test_retry_after_is_capped_at_max_open_seconds() -> None:
    c = cfg(trip=ConsecutiveFailures(1), max_open_seconds=300)
    t = on_outcome(BreakerRecord(), c, 0, "failure", retry_after=86400.0)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(300.0)


def test_a_non_finite_retry_after_uses_the_normal_open_time() -> None:
    c = cfg(trip=ConsecutiveFailures(1))
    t = on_outcome(BreakerRecord(), c, 0, "failure", retry_after=math.inf)
    assert t.record.open_until == pytest.approx(10.0)
    assert "Infinity" not in str(t.record.to_dict()) and "inf" not in str(t.record.to_dict())


def test_retry_after_does_not_bypass_the_failure_threshold() -> None:
    c = cfg(trip=ConsecutiveFailures(3))
    r = BreakerRecord()
    for _ in range(2):
        r = on_outcome(r, c, 0, "failure", retry_after=42.0).record
        assert r.state == "CLOSED"
    t = on_outcome(r, c, 0, "failure", retry_after=42.0)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(42.0)


def test_retry_after_sets_the_reopen_time_of_a_failed_probe() -> None:
    c = cfg(max_open_seconds=100)
    a = admit(trip(c), c, 10, "p")
    t = on_outcome(a.record, c, 11, "failure", probe="p", retry_after=1e9)
    assert t.record.open_until == pytest.approx(111.0)
