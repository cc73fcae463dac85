"""ModelService in process: atomic reload and rollback, drain-then-restart, enforced budgets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from prefect_ft.demo.ran.model_service import ModelService, Refused
from tests.ran.model_support import copy_version, model_root, tiny_model  # noqa: F401
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def root(tmp_path: Path, tiny_model: Path) -> Path:  # noqa: F811
    root = tmp_path / "ran-tiny"
    root.mkdir()
    copy_version(tiny_model, root, "v1")
    return root


def test_reload_swaps_to_a_good_version_and_rolls_back_on_request(root: Path) -> None:
    service = ModelService(root / "v1")
    copy_version(root / "v1", root, "v2")
    out = service.reload({})
    assert out == {"ok": True, "version": "v2", "previous_version": "v1"}
    assert service.generate("Handover", 3)
    back = service.reload({"rollback": True})
    assert back["ok"] and back["version"] == "v1"


def test_reload_of_a_corrupt_version_keeps_the_old_model_serving(root: Path) -> None:
    service = ModelService(root / "v1")
    bad = copy_version(root / "v1", root, "v2")
    (bad / "tokenizer.json").write_text("{ broken")
    out = service.reload({"version": "v2"})
    assert out["ok"] is False and out["rolled_back"] is True
    assert "v2 failed to load" in out["reason"] and "still serving v1" in out["reason"]
    assert service.version == "v1"
    assert service.health(deep=True)["healthy"] is True


def test_rollback_without_a_previous_version_says_so(root: Path) -> None:
    out = ModelService(root / "v1").reload({"rollback": True})
    assert out["ok"] is False and "no previous version" in out["reason"]


def test_restart_drains_in_flight_requests_first(root: Path) -> None:
    service = ModelService(root / "v1")
    # delays of a few seconds: the main thread must act while the slow call is still in flight,
    # which a loaded CI machine may take a second or more to do
    service.faults.set({"kind": "latency", "delay": 3.0})
    results: list[str] = []
    slow = threading.Thread(target=lambda: results.append(service.generate("DRX", 2)))
    slow.start()
    assert wait_until(lambda: service.in_flight == 1)
    restarted: list[dict] = []
    restarter = threading.Thread(target=lambda: restarted.append(service.restart({})))
    restarter.start()
    while not service.draining and restarter.is_alive():
        time.sleep(0.005)
    with pytest.raises(Refused) as refused:  # no new work is admitted while draining
        service.generate("x", 1)
    assert refused.value.status == 503
    slow.join(30)
    restarter.join(30)
    assert len(results) == 1  # the in-flight request finished, it was not cut
    assert restarted[0]["ok"] is True and restarted[0]["drained_in_s"] > 0.2
    assert service.faults.active_kinds() == []  # a restart clears the injected state
    assert service.generate("DRX", 1) is not None


def test_restart_with_damaged_files_keeps_serving(root: Path) -> None:
    service = ModelService(root / "v1")
    (root / "v1" / "model.safetensors").write_bytes(b"")
    out = service.restart({"drain": True})
    assert out["ok"] is False and "still serving the model loaded before" in out["reason"]
    assert service.generate("CA", 1) is not None and service.draining is False


def test_restart_that_cannot_drain_times_out_with_a_reason(root: Path) -> None:
    service = ModelService(root / "v1")
    service.faults.set({"kind": "latency", "delay": 3.0})
    worker = threading.Thread(target=lambda: service.generate("DRX", 1))
    worker.start()
    assert wait_until(lambda: service.in_flight > 0)
    out = service.restart({"drain_timeout": 0.1})
    worker.join(30)
    assert out["ok"] is False and "drain timed out after 0.1s" in out["reason"]
    assert service.draining is False  # admits again


def test_memory_budget_is_enforced_by_the_server(root: Path) -> None:
    service = ModelService(root / "v1")
    base = service.active_mb()
    service.faults.set({"kind": "leak", "mb_per_call": 8, "budget_mb": 16})
    service.generate("CA", 1)
    service.generate("CA", 1)
    assert service.faults.leaked_mb == 16
    assert service.active_mb() >= base + 15
    out = service.set_resources({"memory_mb": base + 8})
    assert out["ok"] and out["over_budget"] is True
    with pytest.raises(Refused, match="memory budget exceeded") as refused:
        service.generate("CA", 1)
    assert refused.value.status == 507
    health = service.health(deep=True)
    assert health["healthy"] is False and "memory budget exceeded" in health["reason"]
    assert service.restart({})["ok"]  # the restart frees the leak
    assert service.generate("CA", 1) is not None


def test_concurrency_limit_refuses_after_a_bounded_wait(root: Path) -> None:
    service = ModelService(root / "v1", admission_wait_s=0.1)
    service.set_resources({"concurrency": 1})
    service.faults.set({"kind": "latency", "delay": 5.0})
    worker = threading.Thread(target=lambda: service.generate("CA", 1))
    worker.start()
    assert wait_until(lambda: service.in_flight > 0)
    with pytest.raises(Refused, match="concurrency limit 1 reached") as refused:
        service.generate("CA", 1)
    assert refused.value.status == 429
    worker.join(30)
