"""Dead letters that cannot be pickled, replay in a running loop, and signed payloads."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from prefect import flow

from prefect_ft.deadletter.queue import DeadLetterQueue, encode_inputs
from prefect_ft.deadletter.replay import areplay, replay
from prefect_ft.tasks.decorator import ft_task
from prefect_ft.tasks.gates import gate_for
from tests.prefect.helpers import fast_policy, unique


def put(queue: DeadLetterQueue, x: int, policy: Any, path: str = "m:f") -> Any:
    encoding, payload = encode_inputs((x,), {})
    return queue.put(
        task_name="f",
        task_path=path,
        component=policy.name,
        policy="pickle:" + base64.b64encode(cloudpickle.dumps(policy)).decode(),
        parameters={"x": x},
        reason="test",
        encoding=encoding,
        payload=payload,
    )


# -- item 11 ------------------------------------------------------------------------------------
def use_lock(lock: Any, n: int) -> int:
    with lock:
        return n


def test_unpicklable_inputs_keep_their_readable_parameters_and_the_reason() -> None:
    policy = fast_policy(unique("lock"))
    t = ft_task(use_lock, breaker=policy)
    gate_for(policy).breaker.force_open()

    @flow
    def locked() -> tuple[str, str]:
        state = t(threading.Lock(), 5, return_state=True)
        return state.name, state.message

    name, message = locked()
    assert name == "CircuitOpen"
    items = list(DeadLetterQueue(policy.name).items())
    assert [i.status for i in items] == ["unreplayable"], items
    item = items[0]
    assert "lock" in item.parameters["lock"] and item.parameters["n"] == 5
    assert "pickle" in item.error and "lock" in item.error
    assert f"dead letter {item.id}" in message and "cannot be replayed" in message, message
    assert "store failed" not in message
    gate_for(policy).breaker.reset()
    report = replay(policy.name)
    assert report.done == [] and report.failed == [] and report.remaining == 0


# -- item 12 ------------------------------------------------------------------------------------
async def test_sync_replay_inside_a_running_loop_is_refused_before_touching_anything() -> None:
    policy = fast_policy(unique("loop"))
    queue = DeadLetterQueue(policy.name)
    put(queue, 7, policy)
    ran: list[int] = []

    async def f(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(RuntimeError, match=r"use `await areplay\(\.\.\.\)`"):
        replay(policy.name, functions={"m:f": f})
    item = queue.get(1)
    assert item.status == "pending" and item.attempts == 0 and item.error is None
    report = await areplay(policy.name, functions={"m:f": f})
    assert report.done == [item.id] and ran == [7]


# -- item 15 ------------------------------------------------------------------------------------
class Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def forge(queue: DeadLetterQueue, seq: int, **fields: Any) -> None:
    """Overwrite an item's record as anyone with write access to the store could."""
    key = f"prefect-ft:dlq:{queue.breaker}:{seq}"
    v = queue.store.read(key)
    raw = json.loads(v.data)
    raw.update(fields)
    assert queue.store.cas(key, v.version, json.dumps(raw))[0]


def test_replay_refuses_forged_and_unsigned_payloads(tmp_path: Path) -> None:
    policy = fast_policy(unique("forged"))
    queue = DeadLetterQueue(policy.name)
    marker = tmp_path / "pwned"
    evil = base64.b64encode(cloudpickle.dumps(Evil(str(marker)))).decode()
    for x in range(4):
        put(queue, x, policy)
    forge(queue, 1, encoding="cloudpickle", payload=evil)  # inputs that run code
    forge(queue, 2, policy="pickle:" + evil)  # a policy that runs code
    forge(queue, 3, signature="")  # unsigned
    ran: list[int] = []
    report = replay(policy.name, functions={"m:f": ran.append})
    assert not marker.exists()  # nothing forged was unpickled
    assert ran == [3]  # item 4, intact, still runs
    assert sorted(report.rejected) == [f"{policy.name}/{n}" for n in (1, 2, 3)]
    assert [queue.get(n).status for n in (1, 2, 3)] == ["rejected-signature"] * 3
    assert "signature" in queue.get(1).error
    assert report.remaining == 0


def test_a_secret_block_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    from prefect_ft.deadletter import signing

    name = unique("dlq-key")
    Secret(value="from-a-secret-block-0123456789abcdef").save(name)
    monkeypatch.delenv("PREFECT_FT_DEADLETTER_KEY", raising=False)
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY_BLOCK", name)
    assert signing.current_key() == b"from-a-secret-block-0123456789abcdef"
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY_BLOCK", unique("missing"))
    with pytest.raises(ValueError, match="PREFECT_FT_DEADLETTER_KEY_BLOCK"):
        signing.current_key()
