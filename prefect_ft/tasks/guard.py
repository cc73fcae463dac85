"""The guard that `ft_task` and `FaultTolerantTaskRunner` put around a task's function.

One call: resolve the policy (`resolve_policy`, TTL-cached, so no I/O per call) -> for a
component with `depends_on`, wait while an upstream is open, else dead-letter the call with
reason `upstream-open` (`prefect_ft.tasks.isolation`) -> one attempt
through the component's gate (`prefect_ft.tasks.gates`: bulkhead permit, breaker admission, the call,
its outcome), then a resource sample of the component at most every
`PREFECT_FT_RESOURCE_SAMPLE_SECONDS` (`prefect_ft.history.resources`). A refused attempt is
dead-lettered and ends in a `Failed` state named `CircuitOpen` or `BulkheadFull`, which does
not count as a failure of the dependency; with `on_open="wait"` the guard first sleeps until the
breaker's `retry_after`, within `max_wait_seconds`.

The guard body exists once for sync and once for async functions; both share every helper.

Private: the public faces are `prefect_ft.tasks` and `prefect_ft.tasks.runner`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import cloudpickle
from prefect.client.schemas.objects import State
from prefect.states import Failed

from prefect_ft.deadletter import supersede
from prefect_ft.deadletter.queue import encode_inputs, render
from prefect_ft.exceptions import BulkheadFullError, CircuitOpenError, ConfigurationError
from prefect_ft.history import components, resources
from prefect_ft.tasks import events as prefect_events
from prefect_ft.tasks import isolation
from prefect_ft.tasks.gates import (
    REJECTED_STATE_NAMES,
    Gate,
    Rejected,
    acall_guarded,
    call_guarded,
    gate_for,
)
from prefect_ft.tasks.policies import FTPolicy, aresolve_policy, resolve_policy

__all__ = [
    "Site",
    "check_tag_component",
    "component_tag",
    "compose_retry_condition",
    "find_site",
    "guard",
    "original_function",
    "spec_name",
]

_MIN_SLEEP = 0.01
_RECHECK_SECONDS = 1.0
log = logging.getLogger("prefect_ft.tasks")
_sites: dict[str, Site] = {}


def spec_name(spec: object) -> str:
    """The component name of a policy spec, without I/O (a name is its own component)."""
    if isinstance(spec, str):
        if not spec.strip():
            raise ConfigurationError(f"breaker must be a non-empty policy name (got {spec!r})")
        return spec
    return resolve_policy(spec).name  # type: ignore[arg-type]  # objects resolve without I/O


def component_tag(spec: object) -> str:
    """The opt-in tag `ft:component:<name>` (see `prefect_ft.history.components` for its cost)."""
    return components.component_tag(spec_name(spec))


def check_tag_component(value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"tag_component must be True or False (got {value!r})")


# -- one guarded function -----------------------------------------------------------------------
class Site:
    """One guarded function: the function, its policy spec and where to find it again."""

    def __init__(self, fn: Callable[..., Any], spec: object, task_name: str) -> None:
        self.fn, self.spec, self.task_name = fn, spec, task_name
        self.component = spec_name(spec)
        self.task_path = f"{fn.__module__}:{fn.__qualname__}"
        self._cached: tuple[FTPolicy | None, Gate | None, float] = (None, None, 0.0)

    def __getstate__(self) -> dict[str, Any]:  # the gate is per process: rebuilt after unpickling
        return {k: v for k, v in self.__dict__.items() if k != "_cached"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _cached=(None, None, 0.0))

    def gate(self) -> Gate:
        _, gate, recheck_at = self._cached
        if gate is not None and time.monotonic() < recheck_at:
            return gate
        return self._gate(resolve_policy(self.spec))  # type: ignore[arg-type]

    async def agate(self) -> Gate:
        _, gate, recheck_at = self._cached
        if gate is not None and time.monotonic() < recheck_at:
            return gate
        return self._gate(await aresolve_policy(self.spec))  # type: ignore[arg-type]

    def _gate(self, policy: FTPolicy) -> Gate:
        cached_policy, gate, _ = self._cached
        if policy is not cached_policy or gate is None:
            gate = gate_for(policy)
        # the resolver caches for PREFECT_FT_CACHE_TTL; asking it once a second keeps the per-call
        # path to one clock read, and a policy edit still arrives within TTL + 1 s
        self._cached = (policy, gate, time.monotonic() + _RECHECK_SECONDS)
        return gate

    def reject(self, gate: Gate, error: BaseException, args: Any, kwargs: Any) -> State:
        """Dead-letter the call, announce it, and build the state the task run ends in."""
        by = getattr(error, "rejected_by", None) or (
            "bulkhead" if isinstance(error, BulkheadFullError) else "breaker"
        )
        item_id = None
        try:
            item = gate.queue.put(**self._dead_letter_fields(gate, error, by, args, kwargs))
            item_id = item.id
            kept = f"inputs kept as dead letter {item_id}"
            if item.status == "unreplayable":
                kept = f"{item.error}: readable parameters kept as dead letter {item_id}, which cannot be replayed"  # fmt: skip
        except Exception as exc:
            kept = f"inputs NOT kept: the dead-letter store failed ({type(exc).__name__}: {exc})"
            log.warning("could not dead-letter a call of %s", self.task_name, exc_info=True)
        prefect_events.emit_rejected(gate.breaker, error, rejected_by=by, dead_letter=item_id)
        name = "BulkheadFull" if by == "bulkhead" else "CircuitOpen"
        return Failed(name=name, message=f"{error}; {kept}", data=error)

    def _dead_letter_fields(
        self, gate: Gate, error: BaseException, by: str, args: Any, kwargs: Any
    ) -> dict[str, Any]:
        from prefect.context import TaskRunContext

        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs).arguments
        except TypeError:
            bound = {"args": args, "kwargs": kwargs}
        unpicklable = None
        try:
            encoding, payload = encode_inputs(tuple(args), dict(kwargs))
        except Exception as exc:  # keep what can be read, and why the rest is lost
            encoding, payload = "none", None
            unpicklable = f"inputs cannot be pickled ({type(exc).__name__}: {exc})"
        policy = self.spec if isinstance(self.spec, str) else gate.policy
        if not isinstance(policy, str):
            policy = "pickle:" + base64.b64encode(cloudpickle.dumps(policy)).decode("ascii")
        ctx = TaskRunContext.get()
        run = ctx.task_run if ctx is not None else None
        return {
            "task_name": self.task_name,
            "task_path": self.task_path,
            "component": gate.policy.name,
            "policy": policy,
            "parameters": {k: render(v) for k, v in bound.items()},
            "reason": str(error),
            "rejected_by": by,
            "retry_after": getattr(error, "retry_after", None),
            "flow_run_id": str(run.flow_run_id) if run is not None and run.flow_run_id else None,
            "task_run_id": str(run.id) if run is not None else None,
            "encoding": encoding,
            "payload": payload or "",
            "match_keys": supersede.match_keys(args, kwargs, payload),
            **({"status": "unreplayable", "error": unpicklable} if unpicklable else {}),
        }


def _next_wait(policy: FTPolicy, error: BaseException, deadline: float | None) -> tuple[float | None, float | None]:  # fmt: skip
    """(seconds to sleep before trying again, or None to give up; the wait's deadline)."""
    if policy.on_open != "wait" or not isinstance(error, CircuitOpenError):
        return None, deadline
    now = time.monotonic()
    deadline = now + policy.max_wait_seconds if deadline is None else deadline
    remaining = deadline - now
    after = error.retry_after
    if remaining <= 0 or (error.state == "OPEN" and after is not None and after > remaining):
        return None, deadline  # an OPEN breaker's reopening time is known: don't wait in vain
    return min(max(after if after is not None else 0.25, _MIN_SLEEP), remaining), deadline


def _completed(out: Any) -> bool:
    return not isinstance(out, State) or out.is_completed()


def guard(fn: Callable[..., Any], spec: object, *, task_name: str | None = None) -> Callable[..., Any]:  # fmt: skip
    """Wrap `fn` (sync or async) so each call goes through `spec`'s bulkhead and breaker."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"generator tasks cannot be guarded (got {fn!r})")
    site = Site(fn, spec, task_name or getattr(fn, "__name__", repr(fn)))
    _sites[site.task_path] = site

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def aguarded(*args: Any, **kwargs: Any) -> Any:
            try:
                gate, deadline = await site.agate(), None
                if gate.policy.depends_on:  # wait while an upstream is open
                    held = await isolation.ahold(site, gate, args, kwargs)
                    if held is not None:
                        return held
                while True:
                    out = await acall_guarded(gate, fn, args, kwargs)
                    if type(out) is not Rejected:
                        if _completed(out):  # a Prefect re-run did the work of a dead letter
                            await supersede.asupersede_completed(gate.queue, args, kwargs)
                        return out
                    delay, deadline = _next_wait(gate.policy, out.error, deadline)
                    if delay is None:
                        return await asyncio.to_thread(site.reject, gate, out.error, args, kwargs)
                    await asyncio.sleep(delay)
            finally:  # at most once per PREFECT_FT_RESOURCE_SAMPLE_SECONDS; never raises
                resources.maybe_sample(site.component)

        guarded: Callable[..., Any] = aguarded
    else:

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                gate, deadline = site.gate(), None
                if gate.policy.depends_on:  # wait while an upstream is open
                    held = isolation.hold(site, gate, args, kwargs)
                    if held is not None:
                        return held
                while True:
                    out = call_guarded(gate, fn, args, kwargs)
                    if type(out) is not Rejected:
                        if _completed(out):  # a Prefect re-run did the work of a dead letter
                            supersede.supersede_completed(gate.queue, args, kwargs)
                        return out
                    delay, deadline = _next_wait(gate.policy, out.error, deadline)
                    if delay is None:
                        return site.reject(gate, out.error, args, kwargs)
                    time.sleep(delay)
            finally:  # at most once per PREFECT_FT_RESOURCE_SAMPLE_SECONDS; never raises
                resources.maybe_sample(site.component)

    # Prefect derives task_key (and cache keys) from this source when it is `__wrapped__`, so a
    # guarded task keys like the plain function: distinct per function and stable across runs.
    guarded.__prefect_task_source__ = fn  # type: ignore[attr-defined]
    guarded.__prefect_ft_site__ = site  # type: ignore[attr-defined]
    return guarded


# -- task helpers -------------------------------------------------------------------------------
def compose_retry_condition(user: Callable[..., Any] | None) -> Callable[..., Any]:
    """A `retry_condition_fn` that never retries a rejection, then asks `user` (if any)."""
    if getattr(user, "__prefect_ft_veto__", False):
        return user  # type: ignore[return-value]

    def retry_condition(task: Any, task_run: Any, state: State) -> Any:
        if state.name in REJECTED_STATE_NAMES:
            return False  # retrying would run a call that is already dead-lettered
        return True if user is None else user(task, task_run, state)

    retry_condition.__prefect_ft_veto__ = True  # type: ignore[attr-defined]
    retry_condition.__wrapped__ = user  # type: ignore[attr-defined]
    return retry_condition


def find_site(task_path: str) -> Site | None:
    """The site guarding the function at `module:qualname` in this process, if any."""
    return _sites.get(task_path)


def original_function(obj: Any) -> Callable[..., Any]:
    """The user's function behind a Task, a guarded function, or the function itself."""
    fn = getattr(obj, "fn", obj)
    site = getattr(fn, "__prefect_ft_site__", None)
    return site.fn if site is not None else fn
