"""`ft_task`: a Prefect task whose body runs behind a circuit breaker and a bulkhead.

The decorator returns a real Prefect `Task` (a `FaultTolerantTask` subclass): every `@task` option
passes through, and direct calls, `.submit()`, `.map()` and retries all go through the guard in
the task's body (`prefect_ft.tasks.guard`), which counts the outcome of every attempt.

This module does not define policies (`prefect_ft.tasks.policies`), run replays (`prefect_ft.replay`)
or apply policies to plain tasks (`prefect_ft.tasks.runner`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

from prefect import Task
from prefect.client.schemas.objects import State

from prefect_ft.history.components import component_task_key
from prefect_ft.tasks.gates import REJECTED_STATE_NAMES
from prefect_ft.tasks.guard import (
    check_tag_component,
    component_tag,
    compose_retry_condition,
    guard,
)

__all__ = ["FaultTolerantTask", "ft_task"]

P = ParamSpec("P")
R = TypeVar("R")


class FaultTolerantTask(Task[P, R]):
    """A Prefect `Task` made by `ft_task`; it differs from `Task` in three small ways.

    - Its `task_key` is the plain function's followed by `|ft:component:<name>`: that is how
      history finds each run's component (`prefect_ft.history.components`).
    - A direct call whose run was refused raises the refusal (`CircuitOpenError` or
      `BulkheadFullError`), as `.submit(...).result()` does, instead of returning the `Failed`
      state; `return_state=True` returns the state.
    - `with_options(...)` keeps the component's task_key, the component tag when it was asked
      for (`tag_component=True`), and the veto of retries for refused runs.
    """

    def __call__(  # type: ignore[override]
        self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any
    ) -> Any:
        out = super().__call__(*args, return_state=return_state, wait_for=wait_for, **kwargs)  # type: ignore[call-overload]
        if return_state:
            return out
        if inspect.isawaitable(out):
            return _araise_refusal(out)
        return _raise_refusal(out)

    def with_options(self, **kwargs: Any) -> FaultTolerantTask[P, R]:  # type: ignore[override]
        site = self.fn.__prefect_ft_site__  # type: ignore[attr-defined]
        tag = component_tag(site.spec)
        if kwargs.get("tags") is not None and tag in self.tags:
            kwargs["tags"] = {*kwargs["tags"], tag}
        if kwargs.get("retry_condition_fn") is not None:
            kwargs["retry_condition_fn"] = compose_retry_condition(kwargs["retry_condition_fn"])
        new = super().with_options(**kwargs)
        new.__class__ = type(self)  # Task.with_options builds a plain `Task`; no state is added
        new.task_key = self.task_key  # the new Task derived the plain function's key again
        return new  # type: ignore[return-value]


def _raise_refusal(out: Any) -> Any:
    if isinstance(out, State) and out.name in REJECTED_STATE_NAMES:
        # the engine swaps the state's data for a result record that holds the error
        error = (
            out.data if isinstance(out.data, BaseException) else getattr(out.data, "result", None)
        )
        if isinstance(error, BaseException):
            raise error
    return out


async def _araise_refusal(out: Awaitable[Any]) -> Any:
    return _raise_refusal(await out)


@overload
def ft_task(
    __fn: Callable[P, R], *, breaker: Any, tag_component: bool = False, **task_options: Any
) -> FaultTolerantTask[P, R]: ...


@overload
def ft_task(
    *, breaker: Any, tag_component: bool = False, **task_options: Any
) -> Callable[[Callable[P, R]], FaultTolerantTask[P, R]]: ...


def ft_task(
    __fn: Callable[P, R] | None = None,
    *,
    breaker: Any,
    tag_component: bool = False,
    **task_options: Any,
) -> Any:
    """Make a Prefect task whose every attempt runs behind a component's breaker and bulkhead.

    The policy is found lazily, at the first call (so at import nothing is read): a name is
    resolved by `prefect_ft.tasks.policies.resolve_policy` - a `ComponentSpec` or
    `CircuitBreakerPolicy` block document of that name, else the built-in preset, else a
    `ConfigurationError` naming it that fails the task run (and the flow that needs it). The
    policy is re-read every `PREFECT_FT_CACHE_TTL` seconds, so a block edited in the UI takes
    effect without a redeploy.

    Each attempt (retries included) takes a bulkhead permit, asks the breaker, runs, and counts
    its outcome (an exception, classified by the breaker's classifier, or a returned `Failed`
    state, is a failure). A refused attempt does not run: its inputs go to the dead-letter queue
    (`prefect_ft.replay` re-runs them once the breaker is CLOSED), a `prefect-ft.breaker.rejected`
    event is emitted, and the task run ends in a `Failed` state named `CircuitOpen` (or
    `BulkheadFull`) whose message names the breaker and `retry_after`. Prefect never retries
    that state; your own `retry_condition_fn` still decides for every other failure. With
    `on_open="wait"` in the policy, a refused attempt first sleeps until the breaker's
    `retry_after` (awaits, for async tasks), within `max_wait_seconds`.

    The task's Prefect `task_key` is the plain function's followed by `|ft:component:<name>`,
    which is how history finds each run's component; the task is not tagged unless asked
    (`tag_component`). The function's signature, name and docstring are the plain function's.

    Args:
        __fn: the function, when used as `ft_task(fn, breaker=...)`.
        breaker: the policy: a component name (`"ipc"`), an `FTPolicy`, or a saved
            `CircuitBreakerPolicy` block.
        tag_component: also tag the task `ft:component:<name>`, so the UI's Runs page can
            filter by component. It costs: Prefect's task engine takes a tag-concurrency lease
            around every run of a tagged task (a service-thread hop per run and a lease request
            every 5 s, which stalls runs when SQLite is locked; DESIGN §10).
        **task_options: any `prefect.task` option (`name`, `retries`, `retry_delay_seconds`,
            `retry_condition_fn`, `tags`, `timeout_seconds`, `cache_policy`, hooks, ...).

    Returns:
        A `FaultTolerantTask`, or a decorator making one.

    Raises:
        TypeError: applied to a `Task`, a generator function, with an unknown task option, or
            with a `tag_component` that is not a bool.
        ConfigurationError: `breaker` is empty or of the wrong type (an unknown *name* is only
            reported when the task first runs).

    Examples:
        Guard calls to the model server's transport with the `ipc` preset:
        ```python
        from prefect import flow
        from prefect_ft import ft_task

        @ft_task(breaker="ipc", retries=2, retry_delay_seconds=1)
        def generate(prompt: str) -> str:
            return model_client.generate(prompt)

        @flow
        def pipeline(prompts: list[str]) -> list[str]:
            return generate.map(prompts).result()
        ```

        A policy object instead of a name, waiting while the breaker is open:
        ```python
        from prefect_ft import ft_task
        from prefect_ft.tasks.policies import FTPolicy
        from prefect_ft.presets import preset_config

        policy = FTPolicy("ipc", preset_config("ipc"), on_open="wait", max_wait_seconds=10)

        @ft_task(breaker=policy)
        async def fetch(doc_id: str) -> bytes: ...
        ```
    """

    check_tag_component(tag_component)

    def decorate(fn: Callable[P, R]) -> FaultTolerantTask[P, R]:
        if isinstance(fn, Task):
            raise TypeError("ft_task takes a function, not a Task: use it instead of @task")
        options = dict(task_options)
        if tag_component:
            options["tags"] = {*(options.get("tags") or ()), component_tag(breaker)}
        options["retry_condition_fn"] = compose_retry_condition(options.get("retry_condition_fn"))
        guarded = guard(fn, breaker, task_name=options.get("name") or fn.__name__)
        made = FaultTolerantTask(fn=guarded, **options)
        # the component rides on the task_key, which every run carries at no cost (a tag would
        # cost a concurrency lease per run)
        component = guarded.__prefect_ft_site__.component  # type: ignore[attr-defined]
        made.task_key = component_task_key(made.task_key, component)
        return made

    return decorate(__fn) if __fn is not None else decorate
