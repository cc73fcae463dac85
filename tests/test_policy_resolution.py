"""`PolicyResolver` keeps the last valid policy when a re-read fails for any reason (issue 8
item 8), without a server: the block reads are replaced by functions of the test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from prefect_ft.core.config import BreakerConfig
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.tasks import policies
from prefect_ft.tasks.policies import FTPolicy, PolicyResolver
from tests.conftest import FakeClock

GOOD = FTPolicy("comp", BreakerConfig("comp", open_seconds=7.0), source="block:test/comp")


class Reads:
    """What the next block read returns or raises."""

    def __init__(self) -> None:
        self.outcome: FTPolicy | BaseException | None = GOOD

    def sync(self, name: str) -> FTPolicy | None:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    async def async_(self, name: str) -> FTPolicy | None:
        return self.sync(name)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    r = Reads()
    monkeypatch.setattr(policies, "_read_sync", r.sync)
    monkeypatch.setattr(policies, "_read_async", r.async_)
    yield r


async def resolve(resolver: PolicyResolver, flavour: str, name: str) -> FTPolicy:
    if flavour == "sync":
        return resolver.resolve(name, ttl=10)
    return await resolver.aresolve(name, ttl=10)


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (RuntimeError("server answered 502"), "RuntimeError: server answered 502"),
        (ConfigurationError("store_url must be ..."), "store_url must be"),
        (None, "no ComponentSpec or CircuitBreakerPolicy block named 'comp'"),  # deleted
    ],
)
async def test_any_failed_re_read_keeps_the_last_valid_policy(
    reads: Reads,
    clock: FakeClock,
    flavour: str,
    failure: BaseException | None,
    cause: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver = PolicyResolver(clock=clock)
    assert await resolve(resolver, flavour, "comp") is GOOD
    reads.outcome = failure
    clock.advance(11)
    with caplog.at_level(logging.WARNING, logger="prefect_ft.policies"):
        assert await resolve(resolver, flavour, "comp") is GOOD
    assert cause in caplog.text and "keeping the last valid policy of 'comp'" in caplog.text
    reads.outcome = GOOD  # retried one TTL later, not on every call
    assert await resolve(resolver, flavour, "comp") is GOOD


async def test_without_a_valid_policy_the_failure_is_a_configuration_error(
    reads: Reads, clock: FakeClock, flavour: str
) -> None:
    reads.outcome = RuntimeError("server answered 502")
    with pytest.raises(ConfigurationError, match=r"cannot resolve policy 'comp'.*502"):
        await resolve(PolicyResolver(clock=clock), flavour, "comp")


def test_an_interrupt_is_not_swallowed(reads: Reads, clock: FakeClock) -> None:
    resolver = PolicyResolver(clock=clock)
    resolver.resolve("comp", ttl=10)
    reads.outcome = KeyboardInterrupt()
    clock.advance(11)
    with pytest.raises(KeyboardInterrupt):
        resolver.resolve("comp", ttl=10)
