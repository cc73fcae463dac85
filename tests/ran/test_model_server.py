"""The model server as a real process: generation, deep health, control routes, faults, startup."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from prefect_ft.demo.ran.model_server import ModelServerStartError, start_model_server
from tests.ran.model_support import (  # noqa: F401
    copy_version,
    model_root,
    pid_gone,
    served,
    tiny_model,
)

pytestmark = pytest.mark.slow


def test_generate_returns_text(served) -> None:  # noqa: F811
    r = httpx.post(served.url + "/generate", json={"prompt": "Beam management", "max_tokens": 8})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["text"], str) and r.json()["text"]
    assert r.json()["version"] == "v1"


def test_deep_health_generates_one_token(served) -> None:  # noqa: F811
    shallow = httpx.get(served.url + "/health", params={"deep": 0}).json()
    deep = httpx.get(served.url + "/health", params={"deep": 1})
    assert deep.status_code == 200, deep.text
    assert deep.json()["healthy"] is True
    assert deep.json()["checked"] == "generated 1 token"
    assert "checked" not in shallow


def test_bad_generate_request_names_the_field(served) -> None:  # noqa: F811
    r = httpx.post(served.url + "/generate", json={"prompt": "x", "max_tokens": 0})
    assert r.status_code == 422 and "max_tokens" in r.json()["error"]
    r = httpx.post(served.url + "/generate", content=b"{not json")
    assert r.status_code == 422 and "body" in r.json()["error"]


def test_fault_hook_checks_kind_and_fields(served) -> None:  # noqa: F811
    r = httpx.post(served.url + "/faults", json={"kind": "meltdown"})
    assert r.status_code == 422 and "kind" in r.json()["reason"]
    r = httpx.post(served.url + "/faults", json={"kind": "errors", "rate": 2})
    assert r.status_code == 422 and "rate: must be in [0, 1]" in r.json()["reason"]


def test_error_fault_is_a_500_until_reload_ends_it(served) -> None:  # noqa: F811
    body = {"prompt": "DRX", "max_tokens": 2}
    try:
        assert httpx.post(served.url + "/faults", json={"kind": "errors"}).status_code == 200
        r = httpx.post(served.url + "/generate", json=body)
        assert r.status_code == 500 and "injected" in r.json()["error"]
        assert httpx.post(served.url + "/reload", json={"version": "v1"}).json()["ok"] is True
        assert httpx.post(served.url + "/generate", json=body).status_code == 200
    finally:
        httpx.post(served.url + "/faults", json={"kind": "clear"})


def test_reload_rolls_back_from_a_corrupt_version(served, model_root: Path) -> None:  # noqa: F811
    bad = copy_version(model_root / "v1", model_root, "v3")
    try:
        (bad / "model.safetensors").write_bytes(b"\0" * 10)
        r = httpx.post(served.url + "/reload", json={})  # newest version: v3, corrupt
        assert r.status_code == 409, r.text
        assert r.json()["rolled_back"] is True and "still serving v1" in r.json()["reason"]
        health = httpx.get(served.url + "/health", params={"deep": 1})
        assert health.status_code == 200 and health.json()["version"] == "v1"
    finally:
        shutil.rmtree(bad)


def test_crash_fault_really_ends_the_process_and_respawn_keeps_the_url(model_root: Path) -> None:  # noqa: F811
    from prefect_ft.demo.ran.ipc import ModelClient, ModelServerUnavailable

    with start_model_server(model_root / "v1") as server:
        client = ModelClient(server.url, timeout=10)
        assert client.generate("CA", 1) is not None
        first_pid, url = server.pid, server.url
        assert httpx.post(server.url + "/faults", json={"kind": "crash"}).json()["ok"]
        server.proc.wait(timeout=10)
        assert server.proc.returncode == 70
        with pytest.raises(ModelServerUnavailable):
            client.generate("CA", 1)
        server.respawn()
        assert server.url == url and server.pid != first_pid
        assert pid_gone(first_pid)
        client.reset()
        assert client.generate("CA", 1) is not None
        client.close()
    assert pid_gone(server.pid)


def test_a_corrupt_model_fails_startup_with_its_reason(tmp_path: Path, model_root: Path) -> None:  # noqa: F811
    bad = copy_version(model_root / "v1", tmp_path, "v1")
    (bad / "config.json").unlink()
    started = time.monotonic()
    with pytest.raises(ModelServerStartError, match=r"exited with code 2.*config\.json is missing"):
        start_model_server(bad)
    assert time.monotonic() - started < 60


def _our_model_servers() -> set[int]:
    """Pids of model-server processes that are children of this test process."""
    import os
    import subprocess

    ps = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    found = set()
    for line in ps.splitlines():
        pid, ppid, args = line.split(None, 2)
        if int(ppid) == os.getpid() and "prefect_ft.demo.ran.model_server" in args:
            found.add(int(pid))
    return found


def test_a_server_never_ready_is_killed_after_the_timeout(model_root: Path) -> None:  # noqa: F811
    before = _our_model_servers()
    with pytest.raises(ModelServerStartError, match=r"not ready within 0\.3s and was killed"):
        start_model_server(model_root / "v1", timeout=0.3)
    assert _our_model_servers() == before


def test_recovery_control_client_drives_the_model_server(served) -> None:  # noqa: F811
    """The issue-9 client (what the recovery executor uses) against the real server."""
    from prefect_ft.exceptions import ControlError
    from prefect_ft.recovery.client import ControlClient

    control = ControlClient(served.url, timeout=30)
    assert control.health(deep=True)["healthy"] is True
    with pytest.raises(ControlError, match="concurrency: must be an integer"):
        control.resources(concurrency=0)
    out = control.resources(memory_mb=4096, concurrency=4)
    assert out["ok"] and out["memory_mb"] == 4096 and out["over_budget"] is False
    assert control.reset_connections()["ok"] is True
    with pytest.raises(ControlError, match=r"HTTP 409: .*still serving v1"):
        control.reload(version="v404")
    assert control.restart()["version"] == "v1"
    control.resources(memory_mb=1_000_000)  # leave the shared server as unconstrained as found
