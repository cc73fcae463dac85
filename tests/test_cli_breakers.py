"""Operators act on shared breakers from another process: `prefect-ft breakers ...`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from prefect_ft.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_force_open_and_reset_from_another_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    here = CircuitBreaker("model-server", store=url, refresh_seconds=None)
    CircuitBreaker("ipc", store=url, refresh_seconds=None)
    out = cli("breakers", "force-open", "model-server", "--store", url)
    assert out.returncode == 0, out.stderr
    here.refresh()
    assert here.state == "FORCED_OPEN"
    with pytest.raises(CircuitOpenError):
        here.call(lambda: 1)
    listing = cli("status", "--store", url)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()[2:]}
    assert lines == {"ipc": "CLOSED", "model-server": "FORCED_OPEN"}
    assert cli("breakers", "reset", "model-server", "--store", url).returncode == 0
    here.refresh()
    assert here.state == "CLOSED" and here.call(lambda: 1) == 1


def test_bad_store_url_is_one_line_without_traceback() -> None:
    out = cli("status", "--store", "nosuch://x")
    assert out.returncode == 1
    assert "unknown scheme 'nosuch'" in out.stderr and "Traceback" not in out.stderr
