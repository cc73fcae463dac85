"""Fixtures for the store contract tests: a real Redis server and one store per backend.

`redis-server` missing: the Redis cases are skipped loudly on a developer machine, and fail
under CI (`CI=true`), where a skipped backend would hide a broken install step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_helpers import RedisServer, find_redis_server

from prefect_ft.stores import BreakerStore, InMemoryBreakerStore

__all__ = ["redis_server", "shared_url", "store", "store_kind"]

STORE_KINDS = ("memory", "sqlite", "redis")


def _require_redis_server() -> str:
    binary = find_redis_server()
    if binary:
        return binary
    reason = (
        "REDIS BACKEND NOT TESTED: no redis-server binary on PATH "
        "(install it: apt-get install -y redis-server)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's `redis-server` (a `RedisServer`); tests must not stop it."""
    binary = _require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"), binary=binary).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_server_process: RedisServer) -> str:
    """URL (`redis://127.0.0.1:PORT/0`) of a real Redis server shared by the session."""
    return redis_server_process.url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A `redis-server` of this test only, which it may stop, pause and restart."""
    server = RedisServer(tmp_path / "redis", binary=_require_redis_server()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The backend under test: `memory`, `sqlite` or `redis`."""
    return request.param


@pytest.fixture
def store(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[BreakerStore]:
    """A fresh, empty store of `store_kind`; closed after the test."""
    if store_kind == "memory":
        made: BreakerStore = InMemoryBreakerStore()
    elif store_kind == "sqlite":
        from prefect_ft.stores.sqlite import SQLiteBreakerStore

        made = SQLiteBreakerStore(str(tmp_path / "state" / "breakers.db"))
    else:
        import redis

        from prefect_ft.stores.redis import RedisBreakerStore

        url = request.getfixturevalue("redis_server")
        with redis.Redis.from_url(url) as admin:
            admin.flushdb()
        made = RedisBreakerStore(url)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL shared by real processes: a SQLite file, or the session's (flushed) Redis."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url = request.getfixturevalue("redis_server")
    import redis

    with redis.Redis.from_url(url) as admin:
        admin.flushdb()
    return url
