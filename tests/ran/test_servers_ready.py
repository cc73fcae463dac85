"""The model server's supervisor announces the restarted server ready (`ModelServer.restore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefect_ft import CircuitBreaker
from prefect_ft.demo.ran.servers import ModelServer
from tests.conftest import FakeClock


class Proc:
    """Stands in for the model server process: dead until respawned."""

    def __init__(self) -> None:
        self.alive = False

    def respawn(self) -> None:
        self.alive = True


class Supervised(ModelServer):
    def __init__(self, deep_ok: bool) -> None:  # no real process: only the supervisor logic
        import threading

        self.proc, self.down, self._lock, self.deep_ok = Proc(), True, threading.Lock(), deep_ok
        self.checked = 0

    def health(self, deep: bool = False) -> dict[str, Any]:
        self.checked += 1
        return {"healthy": self.proc.alive and self.deep_ok}


@pytest.mark.parametrize("deep_ok", [True, False])
def test_restore_announces_the_served_breakers_ready_once_the_deep_check_passes(
    clock: FakeClock, deep_ok: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default store, as the demo's processes use it; a private one (not the machine's)
    monkeypatch.setenv("PREFECT_FT_STORE_URL", f"sqlite:///{tmp_path / 'ft.db'}")
    ipc = CircuitBreaker("ipc", clock=clock, refresh_seconds=None, failure_threshold=1)
    with pytest.raises(ConnectionError):
        ipc.call(lambda: (_ for _ in ()).throw(ConnectionError()))
    assert ipc.state == "OPEN"
    server = Supervised(deep_ok)
    server.restore()
    assert server.proc.alive and server.checked == 1
    # no health check on this breaker: the announcement half-opens it (its probe decides)
    assert ipc.state == ("HALF_OPEN" if deep_ok else "OPEN")
    server.restore()  # already running: no second announcement
    assert server.checked == 1
