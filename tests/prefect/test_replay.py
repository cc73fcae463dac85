"""Dead-letter queue and replay: ordering, claims, a replayer killed mid-run, the replay flow."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from prefect.flows import load_flow_from_entrypoint

from prefect_ft.deadletter.queue import DeadLetterQueue, dead_letter_breakers, encode_inputs
from prefect_ft.deadletter.replay import areplay, current_replay, replay
from prefect_ft.stores import InMemoryBreakerStore
from prefect_ft.tasks.gates import gate_for
from prefect_ft.tasks.policies import FTPolicy
from tests.prefect.helpers import fast_policy, make_ledger, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]


def put(queue: DeadLetterQueue, x: int, policy: FTPolicy, path: str, **extra: Any) -> Any:
    """Dead-letter a call of `path` with inputs `(ledger or x...)` as the guard would."""
    args = extra.pop("args", (x,))
    encoding, payload = encode_inputs(tuple(args), {})
    spec = "pickle:" + base64.b64encode(cloudpickle.dumps(policy)).decode()
    return queue.put(
        task_name=path.rsplit(":", 1)[-1],
        task_path=path,
        component=policy.name,
        policy=spec,
        parameters={"x": x},
        reason="test",
        encoding=encoding,
        payload=payload,
        **extra,
    )


# -- the queue on its own (memory store) ----------------------------------------------------------
def test_concurrent_puts_are_numbered_without_gaps() -> None:
    queue = DeadLetterQueue("gapless", InMemoryBreakerStore())
    policy = fast_policy("gapless")

    def writer(base: int) -> None:
        for i in range(25):
            put(DeadLetterQueue("gapless", queue.store), base + i, policy, "m:f")

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = list(queue.items())
    assert [i.seq for i in items] == list(range(1, 101))
    assert len({i.parameters["x"] for i in items}) == 100
    assert dead_letter_breakers(queue.store) == ["gapless"]


def test_claims_are_exclusive_and_leases_expire() -> None:
    clock = [0.0]
    store = InMemoryBreakerStore(clock=lambda: clock[0])
    queue = DeadLetterQueue("claims", store)
    item = put(queue, 1, fast_policy("claims"), "m:f")
    mine = queue.claim(item, "a", lease_seconds=10)
    assert mine is not None and mine.status == "running" and mine.attempts == 1
    assert queue.claim(item, "b", 10) is None  # stale version
    assert queue.claim(queue.get(1), "b", 10) is None  # live lease
    clock[0] = 11.0  # a's lease ran out: a is presumed dead
    theirs = queue.claim(queue.get(1), "b", 10)
    assert theirs is not None and theirs.in_doubt_reruns == 1 and theirs.attempts == 2
    assert not queue.complete(mine, "late")  # a lost the item: it cannot finish it
    assert queue.complete(theirs, "ok") and queue.get(1).status == "done"
    assert queue.claim(queue.get(1), "c", 10) is None  # done is final
    assert queue.advance_low() == 2 and list(queue.items()) == []


def test_failures_retry_then_park_and_refusals_give_back() -> None:
    queue = DeadLetterQueue("fails", InMemoryBreakerStore())
    put(queue, 1, fast_policy("fails"), "m:f")
    for attempt in (1, 2):
        claimed = queue.claim(queue.get(1), "a", 10)
        assert queue.fail(claimed, "boom", max_attempts=2)
        assert queue.get(1).status == ("pending" if attempt == 1 else "failed")
    put(queue, 2, fast_policy("fails"), "m:f")
    claimed = queue.claim(queue.get(2), "a", 10)
    assert queue.release(claimed) and queue.get(2).status == "pending"
    assert queue.get(2).attempts == 0


def test_inputs_round_trip_as_json_or_pickle() -> None:
    assert encode_inputs((1, "a"), {"k": [1, 2]})[0] == "json"
    assert encode_inputs(((1, 2),), {})[0] == "cloudpickle"  # a tuple would come back a list
    assert encode_inputs((float("nan"),), {})[0] == "cloudpickle"
    queue = DeadLetterQueue("inputs", InMemoryBreakerStore())
    item = put(queue, 1, fast_policy("inputs"), "m:f", args=((1, 2), {3}))
    assert queue.get(item.seq).inputs() == (((1, 2), {3}), {})


# -- replay -------------------------------------------------------------------------------------
def test_replay_waits_for_a_closed_breaker(tmp_path: Path) -> None:
    policy = fast_policy(unique("closed"), failures=1, open_seconds=60)
    ledger = make_ledger(tmp_path / "ledger.db")
    queue = DeadLetterQueue(policy.name)
    put(queue, 1, policy, "tests.prefect.helpers:record_effect", args=(ledger, 1))
    breaker = gate_for(policy).breaker
    breaker.force_open()
    report = replay(policy.name)
    assert report.done == [] and "FORCED_OPEN" in report.waiting[policy.name]
    assert report.remaining == 1
    breaker.reset()
    assert replay([policy.name]).done == [f"{policy.name}/1"]


def test_unimportable_functions_wait_for_a_mapping(tmp_path: Path) -> None:
    policy = fast_policy(unique("lost"))
    queue = DeadLetterQueue(policy.name)
    put(queue, 5, policy, "nowhere.module:gone")
    report = replay(policy.name)
    assert report.done == [] and "nowhere.module:gone" in report.waiting[policy.name]
    seen: list[Any] = []

    def gone(x: int) -> int:
        info = current_replay()
        seen.append((x, info.key if info else None))
        return x

    report = replay(policy.name, functions={"nowhere.module:gone": gone})
    assert report.done == [f"{policy.name}/1"]
    assert seen == [(5, f"prefect-ft-replay:{policy.name}/1")]


async def test_areplay_runs_async_functions(tmp_path: Path) -> None:
    policy = fast_policy(unique("async"))
    queue = DeadLetterQueue(policy.name)
    put(queue, 7, policy, "m:f")
    ran: list[int] = []

    async def f(x: int) -> int:
        ran.append(x)
        return x

    report = await areplay(policy.name, functions={"m:f": f})
    assert report.done == [f"{policy.name}/1"] and ran == [7]


def test_concurrent_replayers_run_each_item_once(tmp_path: Path) -> None:
    policy = fast_policy(unique("race"))
    ledger = make_ledger(tmp_path / "ledger.db")
    queue = DeadLetterQueue(policy.name)
    for x in range(12):
        put(queue, x, policy, "tests.prefect.helpers:record_effect", args=(ledger, x))
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda: reports.append(replay(policy.name))) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [i for r in reports for i in r.done]
    assert sorted(done) == sorted(f"{policy.name}/{n}" for n in range(1, 13))
    con = sqlite3.connect(ledger)
    assert (
        con.execute("SELECT x, COUNT(*) FROM runs GROUP BY x HAVING COUNT(*) > 1").fetchall() == []
    )
    assert con.execute("SELECT COUNT(*) FROM effects").fetchone() == (12,)


@pytest.mark.slow
def test_a_killed_replayer_is_completed_without_running_anything_twice(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    policy = fast_policy(unique("crash"))
    ledger = make_ledger(tmp_path / "ledger.db")
    queue = DeadLetterQueue(policy.name)
    for x in range(8):
        put(queue, x, policy, "tests.prefect.helpers:record_effect", args=(ledger, x))

    env = {
        **os.environ,
        "FT_TEST_EFFECT_SLEEP": "0.4",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    code = (
        "from prefect_ft.deadletter.replay import replay; "
        f"replay({policy.name!r}, lease_seconds=2, concurrency=1)"  # one worker: one item in doubt
    )
    victim = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    con = sqlite3.connect(ledger, timeout=30)
    try:
        started = wait_for(
            lambda: con.execute("SELECT COUNT(*) FROM runs").fetchone()[0],
            lambda n: n >= 4 or victim.poll() is not None,
            timeout=120,
            every=0.05,
        )
        assert victim.poll() is None and started >= 4
        victim.send_signal(signal.SIGKILL)  # mid-way: some items done, one probably running
        victim.wait()
    finally:
        if victim.poll() is None:
            victim.kill()
    at_kill = {i.parameters["x"]: i.status for i in queue.items()}
    done_by_victim = {x for x, s in at_kill.items() if s == "done"}
    assert done_by_victim and set(at_kill.values()) <= {"done", "running", "pending"}
    # killed while sleeping inside item 4 (its run row is written first): exactly one in doubt
    assert sum(s == "running" for s in at_kill.values()) == 1

    time.sleep(2.1)  # the victim's lease expires
    report = replay(policy.name)
    assert report.remaining == 0 and not report.failed
    assert len(report.done) == 8 - len(done_by_victim)
    assert len(report.in_doubt) == sum(s == "running" for s in at_kill.values())

    runs = con.execute("SELECT x, pid, in_doubt FROM runs").fetchall()
    effects = dict(con.execute("SELECT x, COUNT(*) FROM effects GROUP BY x").fetchall())
    assert effects == {x: 1 for x in range(8)}  # every effect exactly once
    me = os.getpid()
    assert not [r for r in runs if r[1] == me and r[0] in done_by_victim]  # done: never re-run
    twice = [x for x in range(8) if sum(r[0] == x for r in runs) > 1]
    assert len(twice) <= 1  # only the in-doubt item may run again ...
    assert all((x, me, 1) in runs for x in twice)  # ... and it knows it is a re-run


def test_replay_flow_entrypoint(tmp_path: Path) -> None:
    replay_flow = load_flow_from_entrypoint(
        str(ROOT / "flows" / "replay_dead_letters.py") + ":replay_dead_letters"
    )
    policy = fast_policy(unique("flow"))
    ledger = make_ledger(tmp_path / "ledger.db")
    queue = DeadLetterQueue(policy.name)
    for x in range(3):
        put(queue, x, policy, "tests.prefect.helpers:record_effect", args=(ledger, x))
    out = replay_flow(breakers=[policy.name])
    assert len(out["done"]) == 3 and out["remaining"] == 0


def test_replay_probes_an_open_breaker_and_keeps_to_the_recovery_ramp(tmp_path: Path) -> None:
    """Without other traffic an OPEN breaker is never probed: the replay sends the probe. In
    RECOVERY it waits as each refusal says instead of retrying at once (which used to inflate
    the ramp's count of offered calls and spin on the store)."""
    policy = fast_policy(unique("ramp"), failures=1, open_seconds=0.3)
    policy = replace(policy, breaker=replace(policy.breaker, recovery_seconds=1.0))
    ledger = make_ledger(tmp_path / "ledger.db")
    queue = DeadLetterQueue(policy.name)
    for x in range(6):
        put(queue, x, policy, "tests.prefect.helpers:record_effect", args=(ledger, x))
    breaker = gate_for(policy).breaker
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert breaker.state == "OPEN"
    refused_before = breaker.counts["not_permitted"]
    report = replay(policy.name, wait_seconds=10)
    assert len(report.done) == 6 and report.remaining == 0
    assert breaker.state == "CLOSED"
    assert breaker.counts["not_permitted"] - refused_before <= 3
