"""The CLI tests run `prefect-ft` as a subprocess against one Prefect test server (the harness)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_TEST_MODE", "1")
ROOT = str(Path(__file__).parents[2])


@pytest.fixture(scope="session")
def api_url(prefect_harness: str) -> str:
    """The run's one test server (tests/conftest.py)."""
    return prefect_harness


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ft.db'}"


def run_cli(
    *args: str, api: str | None, store: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`prefect-ft ARGS` in a fresh interpreter (this worktree's copy), against `api`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PYTHONPATH": ROOT,
            "PREFECT_FT_STORE_URL": store,
            "PREFECT_HOME": str(Path(store[10:]).parent),
        }
    )
    if api is not None:
        env["PREFECT_API_URL"] = api
    code = "from prefect_ft.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
