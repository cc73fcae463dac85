"""Operators act on shared breakers from another process: `prefect-ft breakers ...`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError
from prefect_ft.stores import shared_store
from prefect_ft.stores.index import known_breakers


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
    listing = cli("breakers", "ls", "--store", url)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()[2:]}
    assert lines == {"ipc": "CLOSED", "model-server": "FORCED_OPEN"}
    assert cli("breakers", "reset", "model-server", "--store", url).returncode == 0
    here.refresh()
    assert here.state == "CLOSED" and here.call(lambda: 1) == 1


def test_bad_store_url_is_one_line_without_traceback() -> None:
    out = cli("breakers", "ls", "--store", "nosuch://x")
    assert out.returncode == 1
    assert "unknown scheme 'nosuch'" in out.stderr and "Traceback" not in out.stderr


# -- names an operator mistyped (issue 8 item 9) -----------------------------------------------


def test_a_mistyped_name_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    CircuitBreaker("model-server", store=url, refresh_seconds=None)
    out = cli("breakers", "force-open", "ml-infrence", "--store", url)
    assert out.returncode == 2, out.stderr
    assert "unknown breaker 'ml-infrence'; did you mean 'ml-inference'?" in out.stderr
    assert "Traceback" not in out.stderr
    store = shared_store(url)
    assert known_breakers(store) == ["model-server"]  # nothing created
    assert store.read("prefect-ft:breaker:ml-infrence").data is None

    far = cli("breakers", "reset", "zzzz", "--store", url)
    assert far.returncode == 2
    assert "unknown breaker 'zzzz'; known breakers: " in far.stderr
    assert "doc-processing, ipc, ml-inference, model-server, quality-validation" in far.stderr


def test_create_acts_on_a_new_name_and_forget_removes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    made = cli("breakers", "force-open", "canary", "--create", "--store", url)
    assert made.returncode == 0, made.stderr
    store = shared_store(url)
    assert "canary" in known_breakers(store)
    assert CircuitBreaker("canary", store=url, refresh_seconds=None).state == "FORCED_OPEN"

    typo = cli("breakers", "forget", "canery", "--store", url)
    assert typo.returncode == 2
    assert "unknown breaker 'canery'; did you mean 'canary'?" in typo.stderr
    gone = cli("breakers", "forget", "canary", "--store", url)
    assert gone.returncode == 0, gone.stderr
    assert "canary" not in known_breakers(store)
    assert store.read("prefect-ft:breaker:canary").data is None
    again = cli("breakers", "forget", "canary", "--store", url)
    assert again.returncode == 2 and "unknown breaker 'canary'" in again.stderr


def test_forget_also_removes_the_prober_lease(tmp_path: Path, clock: Any) -> None:
    """A breaker with an active health check leaves a prober lease next to its record;
    forgetting the name removes both (the lease would otherwise stay in the store for good)."""
    from tests.test_prober import Component, fail

    url = f"sqlite:///{tmp_path / 'ft.db'}"
    comp = Component()
    b = CircuitBreaker(
        "retired",
        store=url,
        clock=clock,
        refresh_seconds=None,
        failure_threshold=8,
        health_check=comp.health,
        probe_interval_seconds=0.5,
        probe_confirm_failures=2,
    )
    comp.down = True
    fail(b, comp, 2)
    b.health_prober.step()  # the confirming check opens it
    clock.advance(1.0)
    b.health_prober.step()  # the open period's check: this prober takes the lease first
    store = shared_store(url)
    assert comp.checks == 2 and b.state == "OPEN"
    assert store.read("prefect-ft:prober:retired").data is not None
    gone = cli("breakers", "forget", "retired", "--store", url)
    assert gone.returncode == 0, gone.stderr
    assert store.read("prefect-ft:breaker:retired").data is None
    assert store.read("prefect-ft:prober:retired").data is None
