"""`prefect-ft alerts apply` against a Prefect test server, and one real webhook delivery to a
loopback receiver through the automation it created."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from prefect_ft.core.alerts import AlertPolicy
from prefect_ft.ops.alerts import AUTOMATION_PREFIX, raise_alert
from tests.cli.conftest import run_cli, unique


class Receiver:
    """A loopback webhook: keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_marker = ""  # bodies containing it are answered 500 (once each)
        self.failed: list[dict[str, Any]] = []
        received, me = self.bodies, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                if me.fail_marker and me.fail_marker in json.dumps(body) and not me.failed:
                    me.failed.append(body)
                    self.send_response(500)
                    self.end_headers()
                    return
                received.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, text: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                if text in json.dumps(body):
                    return body
            time.sleep(0.2)
        raise AssertionError(f"no delivery containing {text!r}; got {self.bodies}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_alerts_apply_is_idempotent_and_an_alert_reaches_the_webhook(
    api_url: str, store_url: str, receiver: Receiver
) -> None:
    first = run_cli("alerts", "apply", "--webhook-url", receiver.url, api=api_url, store=store_url)
    assert first.returncode == 0, first.stderr
    receiver.wait_for("test notification")  # apply checked the webhook first
    again = run_cli("alerts", "apply", "--webhook-url", receiver.url, api=api_url, store=store_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": unchanged") == 5 and "0 automation(s) written" in again.stdout
    with get_client(sync_client=True) as client:
        names = {a.name for a in client.read_automations() if a.name.startswith(AUTOMATION_PREFIX)}
    assert names == {
        f"{AUTOMATION_PREFIX}{k}"
        for k in ("fault", "health", "recovery-failed", "emergency", "retry")
    }

    component = unique("ipc")
    policy = AlertPolicy(dedup_seconds=600, rate_limit=5)
    sent = raise_alert(
        component,
        "fault",
        "error-burst:HIGH",
        f"{component}: burst",
        store=store_url,
        policy=policy,
    )
    dup = raise_alert(
        component,
        "fault",
        "error-burst:HIGH",
        f"{component}: burst",
        store=store_url,
        policy=policy,
    )
    assert sent.send and dup.action == "duplicate"
    body = receiver.wait_for(component)
    assert body["subject"] == f"prefect-ft fault: {component}: burst"
    assert f"component: {component}" in body["body"] and body["source"] == "prefect-ft"
    time.sleep(3)  # the duplicate was never emitted: exactly one delivery
    assert sum(component in json.dumps(b) for b in receiver.bodies) == 1

    # an emergency stop is announced through its own automation, never suppressed
    from prefect_ft.ops import emergency

    reason = unique("drill")
    emergency.stop(reason, store=store_url, controls=emergency.PrefectControls(), deployments=[])
    try:
        stop = receiver.wait_for(reason)
        assert stop["subject"] == "prefect-ft EMERGENCY: prefect-ft.emergency.shutdown"
    finally:
        emergency.clear(store=store_url, controls=emergency.PrefectControls())
    receiver.wait_for("prefect-ft.emergency.cleared")


def test_an_unreachable_webhook_is_one_line_and_applies_nothing(
    api_url: str, store_url: str
) -> None:
    block = unique("dead-hook")
    url = f"http://127.0.0.1:{_free_port()}/hook"
    out = run_cli(
        "alerts", "apply", "--block", block, "--webhook-url", url, api=api_url, store=store_url
    )
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith(f"prefect-ft: error: webhook {url} is unreachable")
    assert out.stderr.endswith("; nothing applied\n") and out.stderr.count("\n") == 1
    with get_client(sync_client=True) as client:
        found = [b for b in client.read_block_documents() if b.name == block]
    assert found == []


def test_a_failed_delivery_is_retried_not_dropped(
    api_url: str, store_url: str, receiver: Receiver
) -> None:
    out = run_cli("alerts", "apply", "--webhook-url", receiver.url, api=api_url, store=store_url)
    assert out.returncode == 0, out.stderr
    component = unique("flaky")
    receiver.fail_marker = component  # the receiver answers 500 to the first delivery
    assert raise_alert(
        component, "recovery-failed", "restart", f"{component}: down", store=store_url
    ).send
    body = receiver.wait_for(component)
    assert len(receiver.failed) == 1 and receiver.failed[0]["subject"] == body["subject"]
