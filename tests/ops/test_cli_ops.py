"""`prefect-ft ops-server` as a subprocess: serves the fleet's health and metrics, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from prefect_ft import CircuitBreaker

CLI = "from prefect_ft.cli import main; main()"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_FT_LOG_FORMAT"}
    # no Prefect API here: health events must not start an ephemeral server in the child
    return {**base, "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false", **extra}


def test_ops_server_serves_the_fleet_from_the_store_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    b = CircuitBreaker("cli-ops-ipc", store=url, refresh_seconds=None)
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "ops-server", "--port", "0", "--store", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("prefect-ft ops server on http://127.0.0.1:"), first
        base = first.split()[4]
        b.force_open()
        with urllib.request.urlopen(base + "/health", timeout=10) as r:
            health = json.loads(r.read())
        assert health["components"]["cli-ops-ipc"] == {
            "level": "Degraded",
            "reasons": ["breaker FORCED_OPEN"],
        }
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        found = {
            (s.name, s.labels.get("breaker"), s.labels.get("state")): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }
        assert found[("prefect_ft_breaker_state", "cli-ops-ipc", "FORCED_OPEN")] == 1
        assert found[("prefect_ft_breaker_state", "cli-ops-ipc", "CLOSED")] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-c", CLI, "ops-server", "--port", str(port), "--store", "memory://"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env(),
        )
    assert out.returncode == 1
    assert out.stderr == f"prefect-ft: error: port {port} on 127.0.0.1 is already in use\n"
    assert out.stdout == ""


def test_a_bad_log_format_is_one_line_and_a_non_zero_exit() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CLI, "ops-server", "--port", "0", "--store", "memory://"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(PREFECT_FT_LOG_FORMAT="xml"),
    )
    assert out.returncode == 1
    assert out.stderr == (
        "prefect-ft: error: PREFECT_FT_LOG_FORMAT must be one of console, json (got 'xml')\n"
    )
