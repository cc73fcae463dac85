"""Isolation in the guard: a call waits while an upstream component is open, then is dead-lettered.

Before a guarded call takes its bulkhead permit or asks its own breaker, `hold` looks at the
breakers of every component it depends on (`ComponentSpec.depends_on`, transitively) from their
local views (no store I/O per call; the refresher keeps them current). While one is not
admitting, the call waits (at most `defer_seconds`, re-checking every 0.25 s), so no work is
spent on a chain that cannot finish; past the bound, when an operator holds the upstream open,
or when `max_deferred` calls of the component already wait (the bounded buffer), it is
dead-lettered with reason `upstream-open` and the run ends in `CircuitOpen`, as a rejected call
does. `prefect_ft.replay` replays those once the upstreams admit calls again.

The decisions are `prefect_ft.core.isolation`; this module only reads breakers, sleeps and counts.
A component without `depends_on` pays one attribute check.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prefect_ft.core.isolation import (
    UPSTREAM_OPEN,
    Defer,
    DependencyGraph,
    Go,
    defer,
    outage_owner,
)
from prefect_ft.core.states import BreakerRecord
from prefect_ft.exceptions import CircuitOpenError, ConfigurationError
from prefect_ft.tasks.admitted import running
from prefect_ft.tasks.policies import FTPolicy, resolve_policy

if TYPE_CHECKING:
    from prefect_ft.stores import BreakerStore
    from prefect_ft.tasks.gates import Gate

__all__ = [
    "UpstreamOpenError",
    "ahold",
    "breaker_states",
    "component_graph",
    "deferred_now",
    "hold",
    "recovery_owner",
    "upstream_names",
    "upstream_wait",
]

_RECHECK_SECONDS = 1.0
_lock = threading.Lock()
_deferred: dict[str, int] = {}  # component -> calls waiting right now (the bounded buffer)
_upstreams: dict[int, tuple[FTPolicy, list[tuple[str, Gate]], float]] = {}


class UpstreamOpenError(CircuitOpenError):
    """A call was not run because a component it depends on is open (reason `upstream-open`)."""

    rejected_by = "upstream"

    def __init__(
        self,
        component: str,
        blocked_by: tuple[str, ...],
        detail: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(component, retry_after, "UPSTREAM_OPEN")
        self.args = (component, blocked_by, detail, retry_after)  # so it pickles (Prefect results)
        self.blocked_by = tuple(blocked_by)
        self.detail = detail

    def __str__(self) -> str:
        return f"{UPSTREAM_OPEN}: {self.detail} (a call of {self.breaker!r} depends on it)"


def component_graph(policies: Iterable[FTPolicy]) -> DependencyGraph:
    """The dependency graph of `policies`; a cycle or an unknown upstream is a ConfigurationError."""
    try:
        return DependencyGraph.build({p.name: p.depends_on for p in policies})
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def upstream_names(policy: FTPolicy) -> tuple[str, ...]:
    """Every component `policy` depends on, nearest first, resolved by name.

    Raises:
        ConfigurationError: an upstream name resolves to nothing, or the graph has a cycle.
    """
    if not policy.depends_on:
        return ()
    found: dict[str, FTPolicy] = {policy.name: policy}
    frontier = [policy]
    while frontier:
        current = frontier.pop()
        for up in current.depends_on:
            if up in found:
                continue
            try:
                found[up] = resolve_policy(up)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"depends_on: {current.name} depends on unknown component {up!r} ({exc})"
                ) from None
            frontier.append(found[up])
    return component_graph(found.values()).upstream(policy.name)


def _cached_gates(policy: FTPolicy) -> list[tuple[str, Gate]] | None:
    cached = _upstreams.get(id(policy))
    if cached is not None and cached[0] is policy and time.monotonic() < cached[2]:
        return cached[1]
    return None


def _upstream_gates(policy: FTPolicy) -> list[tuple[str, Gate]]:
    """The upstreams' gates, re-resolved at most once a second (policy edits arrive in TTL + 1 s)."""
    from prefect_ft.tasks.gates import gate_for

    cached = _cached_gates(policy)
    if cached is not None:
        return cached
    gates = [(name, gate_for(resolve_policy(name))) for name in upstream_names(policy)]
    _upstreams[id(policy)] = (policy, gates, time.monotonic() + _RECHECK_SECONDS)
    return gates


def upstream_wait(policy: FTPolicy) -> float | None:
    """Seconds until every upstream admits calls (0: now; None: not until an operator acts).

    The replayer asks this before replaying a component's dead letters.
    """
    waits = [gate.breaker.seconds_until_admission() for _, gate in _upstream_gates(policy)]
    if any(w is None for w in waits):
        return None
    return max((w for w in waits if w is not None), default=0.0)


class _Hold:
    """One call's wait: the decision loop shared by the sync and async guards."""

    def __init__(self, gate: Gate, gates: list[tuple[str, Gate]]) -> None:
        self.policy = gate.policy
        inside = running()  # an upstream whose admitted call encloses this one is no wait
        self.gates = [(name, g) for name, g in gates if name not in inside] if inside else gates
        self.arrived = time.monotonic()
        self.waiting = False

    def step(self) -> float | UpstreamOpenError | None:
        """Seconds to sleep, the error to dead-letter the call with, or None to go."""
        waits = {name: g.breaker.seconds_until_admission() for name, g in self.gates}
        now, name = time.monotonic(), self.policy.name
        with _lock:
            d = defer(
                waits,
                now,
                self.arrived,
                self.policy.defer_seconds,
                deferred=_deferred.get(name, 0),
                capacity=self.policy.max_deferred,
                waiting=self.waiting,
            )
            if isinstance(d, Defer) and not self.waiting:
                _deferred[name] = _deferred.get(name, 0) + 1
                self.waiting = True
        if isinstance(d, Go):
            return None
        if isinstance(d, Defer):
            return max(0.01, d.until - now)
        known = [w for up, w in waits.items() if up in d.blocked_by and w is not None]
        return UpstreamOpenError(name, d.blocked_by, d.detail, max(known, default=None))

    def done(self) -> None:
        if self.waiting:
            with _lock:
                _deferred[self.policy.name] -= 1


def hold(site: Any, gate: Gate, args: Any, kwargs: Any) -> Any:
    """None to run the call now (after waiting, if its upstreams reopened in time), or the
    `CircuitOpen` state of the dead-lettered call."""
    if not gate.policy.depends_on:
        return None
    h = _Hold(gate, _upstream_gates(gate.policy))
    try:
        while True:
            out = h.step()
            if out is None:
                return None
            if isinstance(out, UpstreamOpenError):
                return site.reject(gate, out, args, kwargs)
            time.sleep(out)
    finally:
        h.done()


async def ahold(site: Any, gate: Gate, args: Any, kwargs: Any) -> Any:
    """Async twin of `hold`: awaits instead of sleeping; the dead letter is written off the loop."""
    if not gate.policy.depends_on:
        return None
    gates = _cached_gates(gate.policy)
    if gates is None:  # resolving may read block documents: not on the event loop
        gates = await asyncio.to_thread(_upstream_gates, gate.policy)
    h = _Hold(gate, gates)
    try:
        while True:
            out = h.step()
            if out is None:
                return None
            if isinstance(out, UpstreamOpenError):
                return await asyncio.to_thread(site.reject, gate, out, args, kwargs)
            await asyncio.sleep(out)
    finally:
        h.done()


def deferred_now(component: str) -> int:
    """Calls of `component` waiting for an upstream in this process right now."""
    return _deferred.get(component, 0)


def breaker_states(names: Iterable[str], store: BreakerStore | str | None = None) -> dict[str, str]:
    """Each breaker's effective state as the store has it (one read; never used: CLOSED)."""
    from prefect_ft.stores import shared_store

    names = list(names)
    st = shared_store(store)
    found = st.read_many([f"prefect-ft:breaker:{n}" for n in names])
    out = {}
    for name in names:
        v = found.get(f"prefect-ft:breaker:{name}")
        try:
            record = BreakerRecord.from_dict(json.loads(v.data)) if v and v.data else None
        except (ValueError, TypeError, KeyError):
            record = None  # a corrupt record is the breaker's to quarantine; count it CLOSED
        out[name] = record.effective_state if record is not None else "CLOSED"
    return out


def recovery_owner(
    component: str,
    graph: DependencyGraph,
    store: BreakerStore | str | None = None,
    threshold: float = 0.5,
) -> str:
    """The component a recovery asked for `component` should act on: itself, or, when at least
    `threshold` of its group is open, the group's one recovery target (`core.isolation`)."""
    states = breaker_states(graph.group(component), store)
    return outage_owner(component, states, graph, threshold)
