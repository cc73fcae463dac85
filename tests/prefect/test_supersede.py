"""Exactly-once against Prefect's own re-runs: a dead letter whose call a later run of the same
task completed (a flow retry, a re-run through the API, the same cache key) is never replayed."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.runtime import flow_run as current_flow_run

from prefect_ft.deadletter.queue import DeadLetterQueue
from prefect_ft.deadletter.replay import replay
from prefect_ft.tasks.decorator import ft_task
from prefect_ft.tasks.gates import gate_for
from tests.prefect.helpers import fast_policy, make_ledger, unique


def charges(ledger: str) -> list[str]:
    con = sqlite3.connect(ledger)
    try:
        return [r[0] for r in con.execute("SELECT key FROM effects ORDER BY rowid")]
    finally:
        con.close()


def charge_in(ledger: str, order: str) -> str:
    """The side effect: one row per execution (not idempotent on purpose)."""
    con = sqlite3.connect(ledger, timeout=30, isolation_level=None)
    try:
        con.execute("INSERT INTO effects (key, x, pid) VALUES (?, 0, 0)", (f"{order}:{id(con)}",))
    finally:
        con.close()
    return order


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return make_ledger(tmp_path / "ledger.db")


async def acharge_in(ledger: str, order: str) -> str:
    return charge_in(ledger, order)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_flow_retry_supersedes_the_dead_letter(ledger: str, flavour: str) -> None:
    policy = fast_policy(unique("retry"))
    charge = ft_task(charge_in if flavour == "sync" else acharge_in, breaker=policy, name="charge")
    breaker = gate_for(policy).breaker

    @flow(retries=1)
    def checkout() -> str:
        if current_flow_run.run_count > 1:
            breaker.reset()  # the dependency is back for the flow's retry
            # as if the dead letter had been written by another process: this one's view of
            # the open keys is fresh and empty; a re-run must read the store anyway
            queue = DeadLetterQueue(policy.name)
            queue._keys_cache[(queue.store.url, policy.name)] = (time.monotonic(), {})
        out = charge(ledger, "order-42")
        return asyncio.run(out) if inspect.isawaitable(out) else out

    breaker.force_open()
    assert checkout() == "order-42"
    assert len(charges(ledger)) == 1  # attempt 1 was refused, the retry charged
    items = list(DeadLetterQueue(policy.name).items())
    assert [i.status for i in items] == ["superseded"]
    report = replay(policy.name)
    assert report.done == [] and report.remaining == 0
    assert len(charges(ledger)) == 1  # exactly once


def test_a_different_call_at_the_same_place_does_not_supersede(ledger: str) -> None:
    """Same flow run, task key and dynamic key but other inputs: the dead letter stays pending."""
    policy = fast_policy(unique("other"))
    charge = ft_task(charge_in, breaker=policy, name="charge")
    breaker = gate_for(policy).breaker

    @flow(retries=1)
    def checkout() -> str:
        if current_flow_run.run_count > 1:
            breaker.reset()
            return charge(ledger, "order-43")
        return charge(ledger, "order-42")

    breaker.force_open()
    checkout()
    items = list(DeadLetterQueue(policy.name).items())
    assert [i.status for i in items] == ["pending"]
    assert replay(policy.name).done == [items[0].id]


def test_a_rerun_through_the_api_supersedes_the_dead_letter(ledger: str) -> None:
    """What the UI's Retry button does: the same flow run id, set back to Scheduled, run again."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    policy = fast_policy(unique("api"))
    charge = ft_task(charge_in, breaker=policy, name="charge")
    breaker = gate_for(policy).breaker

    @flow
    def checkout() -> str:
        return charge(ledger, "order-42")

    breaker.force_open()
    state = checkout(return_state=True)
    assert state.is_failed()
    run_id = state.state_details.flow_run_id
    assert [i.status for i in DeadLetterQueue(policy.name).items()] == ["pending"]

    breaker.reset()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Scheduled(), force=True)
        again = client.read_flow_run(run_id)
    out: Any = run_flow(checkout, flow_run=again, return_type="state")
    assert out.is_completed(), out
    assert len(charges(ledger)) == 1
    assert [i.status for i in DeadLetterQueue(policy.name).items()] == ["superseded"]
    assert replay(policy.name).done == []
    assert len(charges(ledger)) == 1


def test_the_same_cache_key_supersedes_across_flow_runs(ledger: str) -> None:
    """An explicit idempotency key is Prefect's own `cache_key_fn`: another flow run completing
    the call with the same key supersedes the dead letter."""
    policy = fast_policy(unique("cache"))
    charge = ft_task(
        charge_in,
        breaker=policy,
        name="charge",
        cache_key_fn=lambda ctx, params: f"charge:{params['order']}",
        refresh_cache=True,
    )
    breaker = gate_for(policy).breaker

    @flow
    def checkout() -> str:
        return charge(ledger, "order-42")

    breaker.force_open()
    assert checkout(return_state=True).is_failed()
    breaker.reset()
    assert checkout() == "order-42"
    assert [i.status for i in DeadLetterQueue(policy.name).items()] == ["superseded"]
    assert replay(policy.name).done == []
    assert len(charges(ledger)) == 1


def test_a_call_refused_on_every_flow_retry_is_kept_once(ledger: str) -> None:
    """Three attempts of the flow, all refused: one dead letter, so replay charges once."""
    policy = fast_policy(unique("thrice"))
    charge = ft_task(charge_in, breaker=policy, name="charge")
    breaker = gate_for(policy).breaker

    @flow(retries=2)
    def checkout() -> str:
        return charge(ledger, "order-42")

    breaker.force_open()
    assert checkout(return_state=True).is_failed()
    items = list(DeadLetterQueue(policy.name).items())
    assert [i.status for i in items] == ["pending"], items
    breaker.reset()
    assert replay(policy.name).done == [items[0].id]
    assert len(charges(ledger)) == 1
