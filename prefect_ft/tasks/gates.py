"""Gates: one breaker, bulkhead and dead-letter queue per component and store, per process.

`gate_for(policy)` returns the component's gate, rebuilt (keeping the parts whose configuration
did not change) when the resolved policy changes, e.g. a block edited in the UI. A rebuilt breaker
reads its state back from the shared store. The first use of a breaker in a process installs the
Prefect event listener and publishes the breaker's state.

`call_guarded` / `acall_guarded` run one attempt through a gate: bulkhead permit, breaker
admission (the local view: no I/O while CLOSED or OPEN), the call, and its outcome. Both the task
guard (`prefect_ft.tasks.guard`) and the replayer (`prefect_ft.replay`) use them.

Private: the public faces are `prefect_ft.tasks`, `prefect_ft.tasks.runner` and `prefect_ft.replay`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from prefect.client.schemas.objects import State

from prefect_ft.breaker import CircuitBreaker
from prefect_ft.bulkhead.permits import Bulkhead
from prefect_ft.deadletter.queue import DeadLetterQueue
from prefect_ft.exceptions import BulkheadFullError, CircuitOpenError
from prefect_ft.settings import default_store_url
from prefect_ft.tasks import events as prefect_events
from prefect_ft.tasks.admitted import admitted
from prefect_ft.tasks.policies import FTPolicy

__all__ = ["REJECTED_STATE_NAMES", "Gate", "Rejected", "acall_guarded", "call_guarded", "gate_for"]

REJECTED_STATE_NAMES = frozenset({"CircuitOpen", "BulkheadFull"})


@dataclass(frozen=True, slots=True)
class Gate:
    """What one component's calls go through in this process."""

    policy: FTPolicy
    breaker: CircuitBreaker
    bulkhead: Bulkhead | None
    queue: DeadLetterQueue


class Rejected(NamedTuple):
    """An attempt refused by the bulkhead or the breaker (the function did not run)."""

    error: CircuitOpenError | BulkheadFullError


class _FailedState(Exception):
    """A returned `Failed` state, classified like a raised exception."""

    def __init__(self, state: State) -> None:
        super().__init__(state.message)
        # a nested guard's own rejection is not a failure of this dependency
        self._prefect_ft_rejection = state.name in REJECTED_STATE_NAMES


# -- registry: one breaker (and bulkhead) per component and store, per process -------------------
_gates: dict[tuple[str, str], Gate] = {}
_gates_lock = threading.Lock()


def gate_for(policy: FTPolicy) -> Gate:
    """The gate of `policy`'s component; rebuilt (keeping what did not change) on a new policy."""
    key = (policy.name, policy.store_url or default_store_url())
    gate = _gates.get(key)
    if gate is not None and gate.policy == policy:
        return gate
    with _gates_lock:
        gate = _gates.get(key)
        if gate is not None and gate.policy == policy:
            return gate
        old = gate
        if old is not None and old.breaker.config == policy.breaker:
            breaker = old.breaker
        else:
            breaker = CircuitBreaker(policy.breaker, store=key[1])
        bulkhead = None
        if policy.bulkhead is not None:
            keep = old is not None and old.bulkhead is not None
            same = keep and old.bulkhead.config == policy.bulkhead  # type: ignore[union-attr]
            bulkhead = old.bulkhead if same else Bulkhead(policy.bulkhead, store=key[1])  # type: ignore[union-attr]
        gate = _gates[key] = Gate(
            policy, breaker, bulkhead, DeadLetterQueue(breaker.name, breaker.store)
        )
    if old is None or old.breaker is not breaker:
        prefect_events.install()
        prefect_events.set_component(breaker, policy.name)
        prefect_events.publish_state(breaker)
    return gate


# -- one attempt (shared by the guard and the replayer) -----------------------------------------
def call_guarded(gate: Gate, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Run `fn` once through the gate's bulkhead and breaker; `Rejected` if either refuses."""
    if gate.bulkhead is None:
        return _through_breaker(gate.breaker, fn, args, kwargs)
    permit = gate.bulkhead.permit()
    try:
        permit.__enter__()
    except BulkheadFullError as error:
        return Rejected(error)
    try:
        return _through_breaker(gate.breaker, fn, args, kwargs)
    finally:
        permit.__exit__(None, None, None)


async def acall_guarded(gate: Gate, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Async twin of `call_guarded`."""
    if gate.bulkhead is None:
        return await _athrough_breaker(gate.breaker, fn, args, kwargs)
    permit = gate.bulkhead.apermit()
    try:
        await permit.__aenter__()
    except BulkheadFullError as error:
        return Rejected(error)
    try:
        return await _athrough_breaker(gate.breaker, fn, args, kwargs)
    finally:
        await permit.__aexit__(None, None, None)


def _through_breaker(breaker: CircuitBreaker, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:  # fmt: skip
    try:
        token = breaker._enter()
    except CircuitOpenError as error:
        return Rejected(error)
    try:
        with admitted(breaker.name):
            result = fn(*args, **kwargs)
    except BaseException as exc:
        breaker._exit_error(token, exc)
        raise
    _settle(breaker, token, result)
    return result


async def _athrough_breaker(breaker: CircuitBreaker, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:  # fmt: skip
    # the breaker's async paths: its store writes run off the event loop
    try:
        token = await breaker._aenter()
    except CircuitOpenError as error:
        return Rejected(error)
    try:
        with admitted(breaker.name):
            result = await fn(*args, **kwargs)
    except BaseException as exc:
        await breaker._aexit_error(token, exc)
        raise
    if isinstance(result, State) and result.is_failed():
        await breaker._aexit_error(token, _FailedState(result))
    else:
        await breaker._aexit_ok(token)
    return result


def _settle(breaker: CircuitBreaker, token: Any, result: Any) -> None:
    if isinstance(result, State) and result.is_failed():
        breaker._exit_error(token, _FailedState(result))
    else:
        breaker._exit_ok(token)
