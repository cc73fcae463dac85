"""One Prefect test server for the whole session (it takes about 20 s to start)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_TEST_MODE", "1")


@pytest.fixture(scope="session", autouse=True)
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: str
) -> Iterator[None]:
    """The run's test server (tests/conftest.py); breaker state goes to a SQLite file of this session."""
    store = tmp_path_factory.mktemp("ft-store") / "prefect-ft.db"
    os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{store}"
    # sign dead letters with a session key, not one generated under the user's PREFECT_HOME
    os.environ.setdefault("PREFECT_FT_DEADLETTER_KEY", f"test-session-{uuid.uuid4().hex}")
    yield
