"""Recovery inside the demo: a breaker that opens starts `recover` in-process; the failure type
picks the strategy, the control channel is called for real, and the breaker moves on (HALF_OPEN)
long before its open time ends."""

from __future__ import annotations

import threading
import uuid

import pytest

from prefect_ft.demo.ran.faults import InjectedFault
from prefect_ft.demo.ran.ipc import ModelInferenceError
from prefect_ft.demo.ran.recoveries import DemoRecovery, failure_type_of

pytestmark = pytest.mark.slow


class FakeModelServer:
    """The control side of a model server: counts what recovery asked for; always healthy."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _did(self, what: str) -> dict:
        with self.lock:
            self.calls.append(what)
        return {"ok": True}

    def health(self, deep: bool = False) -> dict:
        return {"healthy": True}

    def reload(self, body: dict) -> dict:
        return self._did("reload")

    def restart(self, body: dict) -> dict:
        return self._did("restart")

    def reset_connections(self, body: dict) -> dict:
        return self._did("reset-connections")


@pytest.fixture
def own_store(tmp_path, prefect_harness, monkeypatch):
    monkeypatch.setenv("PREFECT_FT_STORE_URL", f"sqlite:///{tmp_path / 'store.db'}")


def test_failure_types_of_the_demo_errors() -> None:
    from prefect_ft.demo.ran.ipc import ModelServerUnavailable

    assert failure_type_of(InjectedFault("burst"), "ml-inference") == "ModelInferenceError"
    assert failure_type_of(ModelInferenceError("500"), "ml-inference") == "ModelInferenceError"
    assert failure_type_of(ConnectionResetError("drop"), "ipc") == "ConnectionError"
    assert failure_type_of(ModelServerUnavailable("refused"), "ml-inference") == "ConnectionError"
    assert failure_type_of(None, "ipc") is None


@pytest.mark.parametrize(
    ("error", "strategy"),
    [(ModelInferenceError("HTTP 500"), "reload"), (ConnectionResetError("drop"), "reset")],
)
def test_an_opened_breaker_is_recovered_in_process_and_moved_on(own_store, error, strategy):
    from prefect_ft import CircuitBreaker, add_global_listener, remove_global_listener
    from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
    from prefect_ft.recovery import serve_control

    name = f"demo-rec-{uuid.uuid4().hex[:8]}"
    fake = FakeModelServer()
    server = serve_control(fake)
    policy = CircuitBreakerPolicy(failure_threshold=3, open_seconds=600.0, max_open_seconds=900.0)
    ComponentSpec(
        component=name,
        breaker=policy,
        recovery=RecoveryPolicy(health_check_timeout_seconds=20.0),
        control_endpoint=server.url,
    ).save(name, overwrite=True)
    breaker = CircuitBreaker(policy.to_config(name))
    rec = DemoRecovery([name], lambda _c: error, check_interval_seconds=0.2)
    add_global_listener(rec)
    try:
        for _ in range(3):
            with pytest.raises(type(error)), breaker:
                raise error
        records = rec.close(timeout=120)
    finally:
        remove_global_listener(rec)
        server.stop()
    assert len(records) == 1, records
    r = records[0]
    assert r["outcome"] == "succeeded", r
    assert r["component"] == name and r["breaker_after"] == "HALF_OPEN"
    want = {"reload": "model-reload", "reset": "connection-reset"}[strategy]
    assert [a["strategy"] for a in r["attempts"]] == [want]
    assert fake.calls == [{"reload": "reload", "reset": "reset-connections"}[strategy]]
    # the 600 s open time did not have to pass: the breaker already admits a probe
    breaker.refresh()
    assert breaker.state == "HALF_OPEN"
    assert r["ended_at"] - r["opened_at"] < 60
