"""Shared fixtures: a fake clock (no test sleeps to move time), breaker factories, and the one
Prefect test server of a run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

# No per-example time limit for property tests: hypothesis's default (200 ms) measures the
# machine, not the code. Under CI-like load a pure lease-maths property failed once in six runs
# on it, and passed when replayed. A real counterexample still fails, and is kept and replayed.
settings.register_profile("prefect-ft", deadline=None)
settings.load_profile("prefect-ft")


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


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """Start `prefect_test_harness()` once per run (about 20 s) and yield its API URL.

    Every test that needs a Prefect server shares this one: a second harness in the same
    process does not give a second clean server (the CLI tests' own harness, started first, left
    the later Prefect tests reading task runs and events from the wrong place).
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield str(PREFECT_API_URL.value())
