"""Shared fixtures: a fake clock (no test sleeps to move time) and breaker factories."""

from __future__ import annotations

import pytest


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Run a test body once for a sync and once for an async function (STYLE §2.6)."""
    return request.param
