"""The ipc component: ModelClient's pool against a real model server process."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from prefect_ft.demo.ran.ipc import (
    ModelClient,
    ModelInferenceError,
    ModelResourceExhausted,
    ModelServerUnavailable,
    ModelTimeout,
)
from prefect_ft.detection.classify import classify_exception
from tests.ran.model_support import model_root, served, tiny_model  # noqa: F401

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sync_pool_serves_concurrent_callers(served) -> None:  # noqa: F811
    with ModelClient(served.url, pool_size=2) as client, ThreadPoolExecutor(6) as pool:
        texts = list(pool.map(lambda i: client.generate(f"Carrier {i}", 4), range(12)))
    assert len(texts) == 12 and all(isinstance(t, str) and t for t in texts)


async def test_async_twin_shares_the_pool_rules(served) -> None:  # noqa: F811
    client = ModelClient(served.url, pool_size=3)
    texts = await asyncio.gather(*(client.agenerate(f"Beam {i}", 3) for i in range(6)))
    assert all(texts)
    client.close()


def test_unreachable_server_is_a_connection_error_with_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    client = ModelClient(url, timeout=2)
    with pytest.raises(
        ConnectionError, match=r"model server at http://127\.0\.0\.1:\d+ unreachable"
    ):
        client.generate("x", 1)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ModelServerUnavailable("model server at u unreachable (ConnectError)"), "ConnectionError"),
        (ModelTimeout("model server at u timed out (ReadTimeout)"), "Timeout"),
        (ModelInferenceError("model server at u: HTTP 500: injected"), "ModelInferenceError"),
        (ModelResourceExhausted("model server at u: HTTP 507: budget"), "ResourceExhaustion"),
    ],
)
def test_client_failures_classify_as_their_failure_type(exc: Exception, expected: str) -> None:
    assert classify_exception(exc, component="ipc").failure_type.value == expected


def test_dropped_connections_then_reset_recovers(served) -> None:  # noqa: F811
    client = ModelClient(served.url, pool_size=2)
    try:
        assert client.generate("DRX", 2)
        httpx.post(served.url + "/faults", json={"kind": "drop", "rate": 1.0})
        with pytest.raises(ModelServerUnavailable, match="dropped the connection"):
            client.generate("DRX", 2)
        httpx.post(served.url + "/reset-connections", json={})
        client.reset()
        assert client.resets == 1
        assert client.generate("DRX", 2)
    finally:
        httpx.post(served.url + "/faults", json={"kind": "clear"})
        client.close()


def test_slow_server_is_a_timeout(served) -> None:  # noqa: F811
    client = ModelClient(served.url, timeout=0.3)
    try:
        httpx.post(served.url + "/faults", json={"kind": "latency", "delay": 1.5, "duration": 5})
        with pytest.raises(ModelTimeout, match="timed out"):
            client.generate("slow", 1)
    finally:
        httpx.post(served.url + "/faults", json={"kind": "clear"})
        client.close()


def test_server_side_errors_are_inference_errors(served) -> None:  # noqa: F811
    client = ModelClient(served.url)
    try:
        httpx.post(served.url + "/faults", json={"kind": "errors", "rate": 1.0})
        with pytest.raises(ModelInferenceError, match="HTTP 500: injected"):
            client.generate("x", 1)
    finally:
        httpx.post(served.url + "/faults", json={"kind": "clear"})
        client.close()


def test_bad_client_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        ModelClient("http://127.0.0.1:1", pool_size=0)
    with pytest.raises(ValueError, match="url"):
        ModelClient("127.0.0.1:1")


def test_async_pool_survives_successive_event_loops(served) -> None:  # noqa: F811
    """Prefect runs async tasks on more than one loop; a pool from a closed loop is never reused."""
    client = ModelClient(served.url)
    for i in range(4):
        assert asyncio.run(client.agenerate(f"Loop {i}", 1)) is not None
    client.close()


@pytest.mark.parametrize("status", [429, 507])
def test_a_refusal_for_resources_reads_as_resource_exhaustion_in_the_history(status) -> None:
    # the detection pass classifies a failed task run from its state message and exception
    # name only (no live exception): the message itself must say what ran short
    from prefect_ft.detection.classify import classify_state

    client = ModelClient("http://127.0.0.1:1")
    answer = httpx.Response(status, json={"error": "memory budget exceeded: 64.7 MB > 64 MB"})
    with pytest.raises(ModelResourceExhausted) as caught:
        client._result(answer)
    message = f"Task run encountered an exception ModelResourceExhausted: {caught.value}"
    for component in ("ml-inference", "ipc"):
        cls = classify_state(
            "FAILED", "Failed", message, "ModelResourceExhausted", component=component
        )
        assert cls is not None and cls.failure_type.value == "ResourceExhaustion", component


@pytest.mark.parametrize(
    "cause",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),  # a crashed server
        httpx.RemoteProtocolError("Server disconnected without sending a response."),  # a drop
    ],
)
def test_an_unreachable_server_reads_as_a_connection_error_in_the_history(cause) -> None:
    # a crashed model server's refused connections were read back as ModelInferenceError (the
    # message said "model server ... ConnectError"), so the crash shared the model errors'
    # burst hold-off and went undetected
    from prefect_ft.detection.classify import classify_state

    exc = ModelClient("http://127.0.0.1:1")._translate(cause)
    message = f"Task run encountered an exception ModelServerUnavailable: {exc}"
    for component in ("ml-inference", "ipc"):
        cls = classify_state(
            "FAILED", "Failed", message, "ModelServerUnavailable", component=component
        )
        assert cls is not None and cls.failure_type.value == "ConnectionError", component
