"""The control channel on a real uvicorn server (port 0) and in process: answers and failures."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from prefect_ft.exceptions import ConfigurationError, ControlError
from prefect_ft.recovery import ControlClient, LocalControl, connect, serve_control
from prefect_ft.recovery.control import ComponentControl
from tests.recovery import components
from tests.recovery.components import AsyncComponent, Component, Hanging


@pytest.fixture
def comp() -> Component:
    return Component()


@pytest.fixture
def server(comp: Component):
    with serve_control(comp) as srv:
        yield srv


@pytest.fixture
def hanging():
    comp = Hanging()
    srv = serve_control(comp)
    try:
        yield comp, srv
    finally:
        comp.release.set()  # frees the handler thread also when the test fails
        srv.stop()


def free_dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_components_satisfy_the_protocol(comp: Component) -> None:
    assert isinstance(comp, ComponentControl)


def test_health_and_actions_over_http(server, comp: Component) -> None:
    client = ControlClient(server.url, timeout=5)
    assert client.health() == {"healthy": True, "version": "v2", "deep": True}
    assert client.health(deep=False)["deep"] is False
    assert client.reload(version="v1") == {"action": "reload", "ok": True}
    assert comp.version == "v1"
    assert client.restart(drain_seconds=1)["ok"] is True
    assert client.reset_connections()["action"] == "reset_connections"
    assert client.resources(memory_mb=512, concurrency=4)["ok"] is True
    assert ("resources", {"memory_mb": 512, "concurrency": 4}) in comp.calls


def test_unhealthy_is_an_answer_not_an_error(server, comp: Component) -> None:
    comp.healthy = False
    raw = httpx.get(server.url + "/health", params={"deep": 1})
    assert raw.status_code == 503
    assert ControlClient(server.url).health() == {
        "healthy": False,
        "reason": "model answers garbage",
    }


def test_health_that_raises_is_unhealthy(server, comp: Component) -> None:
    comp.health = lambda deep: 1 / 0  # type: ignore[method-assign]
    answer = ControlClient(server.url).health()
    assert answer == {"healthy": False, "reason": "ZeroDivisionError: division by zero"}


def test_handler_exception_is_500_with_one_line(server, comp: Component) -> None:
    comp.fail_with = RuntimeError("drain failed:\n  3 requests stuck")
    with pytest.raises(ControlError) as info:
        ControlClient(server.url).restart()
    assert info.value.status == 500
    assert info.value.reason == "HTTP 500: RuntimeError: drain failed: 3 requests stuck"
    assert "\n" not in str(info.value)


def test_refusal_is_409(server, comp: Component) -> None:
    comp.refuse = True
    with pytest.raises(ControlError, match="HTTP 409: reload refused: busy"):
        ControlClient(server.url).reload()


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        ({"memory_mb": -1}, "memory_mb: must be a number in (0, 1048576] (got -1)"),
        ({"memory_mb": "lots"}, "memory_mb: must be a number"),
        ({"concurrency": 0}, "concurrency: must be an integer in [1, 10000] (got 0)"),
        ({"concurrency": 2.5}, "concurrency: must be an integer"),
        ({"cpus": 2}, "cpus: unknown field (allowed: concurrency, memory_mb)"),
        ({}, "body: give memory_mb and/or concurrency"),
    ],
)
def test_bad_budget_is_422_naming_the_field(server, comp, budget, field) -> None:
    with pytest.raises(ControlError) as info:
        ControlClient(server.url).resources(**budget)
    assert info.value.status == 422
    assert field in info.value.reason
    assert not [c for c in comp.calls if c[0] == "resources"]


def test_bad_json_is_422(server) -> None:
    bad = httpx.post(server.url + "/reload", content=b"{nope")
    assert bad.status_code == 422
    assert bad.json()["reason"].startswith("body: not valid JSON")
    listed = httpx.post(server.url + "/reload", json=[1, 2])
    assert listed.status_code == 422
    assert listed.json() == {"ok": False, "reason": "body: must be a JSON object (got list)"}


def test_unreachable_endpoint() -> None:
    port = free_dead_port()
    started = time.monotonic()
    with pytest.raises(ControlError) as info:
        ControlClient(f"http://127.0.0.1:{port}", timeout=2).health()
    assert info.value.reason.startswith("unreachable")
    assert info.value.status is None
    assert time.monotonic() - started < 2


def test_hanging_restart_times_out(hanging) -> None:
    _, srv = hanging
    started = time.monotonic()
    with pytest.raises(ControlError, match=r"restart on .*: timed out after 0.5 s"):
        ControlClient(srv.url, timeout=0.5).restart()
    assert time.monotonic() - started < 3
    # the server still answers while the hung handler's thread waits (a hung server would
    # not answer at all: a generous timeout only spares a loaded machine)
    assert ControlClient(srv.url, timeout=30).health()["healthy"] is True


async def test_async_twins(server, comp: Component) -> None:
    client = ControlClient(server.url, timeout=5)
    assert (await client.ahealth())["healthy"] is True
    assert (await client.areload(version="v3"))["ok"] is True
    assert comp.version == "v3"
    assert (await client.arestart())["ok"] is True
    assert (await client.areset_connections())["ok"] is True
    assert (await client.aresources(concurrency=2))["ok"] is True
    with pytest.raises(ControlError, match="concurrency"):
        await client.aresources(concurrency=-2)


async def test_async_hang_and_unreachable(hanging) -> None:
    _, srv = hanging
    with pytest.raises(ControlError, match=r"timed out after 0\.3 s"):
        await ControlClient(srv.url, timeout=0.3).arestart()
    with pytest.raises(ControlError, match="unreachable"):
        await ControlClient(f"http://127.0.0.1:{free_dead_port()}", timeout=1).ahealth()


def test_async_handler_and_missing_method() -> None:
    with serve_control(AsyncComponent()) as srv:
        client = ControlClient(srv.url)
        assert client.restart() == {"restarts": 1, "ok": True}
        assert client.health()["restarts"] == 1
        with pytest.raises(ControlError, match="HTTP 501: component has no set_resources"):
            client.resources(concurrency=1)


def test_stop_is_prompt_with_a_hung_handler() -> None:
    comp = Hanging()
    srv = serve_control(comp)
    try:
        with pytest.raises(ControlError):
            ControlClient(srv.url, timeout=0.3).restart()
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 4
        with pytest.raises(ControlError, match="unreachable"):
            ControlClient(srv.url, timeout=1).health()
    finally:
        comp.release.set()
        srv.stop()


def test_in_process_entry_point() -> None:
    client = connect("python:tests.recovery.components:LOCAL", timeout=2)
    assert isinstance(client, LocalControl)
    assert client.health()["healthy"] is True
    assert client.reload(version="v9")["ok"] is True
    assert components.LOCAL.version == "v9"
    with pytest.raises(ControlError, match="HTTP 422: memory_mb"):
        client.resources(memory_mb=0)


async def test_in_process_async_twin() -> None:
    client = connect("python:tests.recovery.components:LOCAL", timeout=2)
    assert (await client.ahealth())["healthy"] is True


def test_in_process_hang_times_out() -> None:
    client = connect("python:tests.recovery.components:HANGING", timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(ControlError, match=r"timed out after 0\.3 s"):
            client.restart()
        assert time.monotonic() - started < 2
    finally:
        components.HANGING.release.set()


@pytest.mark.parametrize(
    ("endpoint", "error", "match"),
    [
        ("ftp://x", ConfigurationError, "control_endpoint: must be http"),
        ("python:nomodule", ConfigurationError, "python:module:attr"),
        ("python:tests.recovery.nosuch:X", ControlError, "cannot load"),
        ("python:tests.recovery.components:NOPE", ControlError, "cannot load"),
    ],
)
def test_bad_endpoints(endpoint, error, match) -> None:
    with pytest.raises(error, match=match):
        connect(endpoint)


def test_bad_timeout_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="timeout: must be a number of seconds > 0"):
        ControlClient("http://127.0.0.1:1", timeout=0)


def test_calls_do_not_build_a_tls_context_each(server, monkeypatch) -> None:
    """httpx builds a TLS context per client (0.3-0.7 s on a loaded 2-core machine): the client
    shares one, or validation's 1 s spacing and the 30 s recovery target drown in it."""
    import ssl

    built = []
    real = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    client = ControlClient(server.url)
    for _ in range(5):
        client.health()
    assert len(built) <= 1


async def test_async_calls_do_not_build_a_tls_context_each(server, monkeypatch) -> None:
    import ssl

    built = []
    real = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    client = ControlClient(server.url)
    for _ in range(5):
        await client.ahealth()
    assert len(built) <= 1
