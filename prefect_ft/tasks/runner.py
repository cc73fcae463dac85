"""`FaultTolerantTaskRunner`: apply breaker policies to every task a flow submits or maps.

Before:
```python
@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def pipeline(docs): ...
```
After (plain `@task`s now run as if decorated with `ft_task`):
```python
@flow(task_runner=FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=8),
                                          policies={"generate": "ml-inference", "tag:ipc": "ipc"}))
def pipeline(docs): ...
```

A Prefect task runner sees only `.submit()` and `.map()` (a direct call `my_task(x)` never reaches
it): decorate tasks with `ft_task` to guard direct calls too. The runner delegates everything
else to its inner runner and returns the inner runner's futures unchanged, so Dask and Ray
runners keep recognising their own futures.

This module does not implement the guard itself (`prefect_ft.tasks.guard`, shared with `ft_task`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from prefect_ft.exceptions import ConfigurationError
from prefect_ft.history.components import component_task_key
from prefect_ft.tasks.guard import (
    check_tag_component,
    component_tag,
    compose_retry_condition,
    guard,
    spec_name,
)
from prefect_ft.tasks.policies import resolve_policy

__all__ = ["FaultTolerantTaskRunner"]

TAG_PREFIX = "tag:"
ANY_TASK = "*"


class FaultTolerantTaskRunner(TaskRunner[Any]):
    """Run submitted and mapped tasks behind breakers and bulkheads, on any inner runner.

    Policy keys (checked in this order; the first match wins):

    | key | matches |
    |---|---|
    | `"<task name>"` | a task whose `name` is exactly this |
    | `"tag:<tag>"` | a task whose `tags` include `<tag>` (keys tried in the mapping's order) |
    | `"*"` | every other task |

    A value is a policy: a component name (resolved like `ft_task(breaker=...)`: block document,
    then preset), an `FTPolicy`, a saved `CircuitBreakerPolicy`, or None to leave matching tasks
    unguarded. Tags given at run time with `prefect.tags(...)` are not seen (only the task's own).
    A task made with `ft_task` keeps its own policy and is never wrapped twice.

    A guarded run behaves exactly as with `ft_task`: outcomes counted per attempt, a refused
    run dead-lettered and ended in `CircuitOpen` / `BulkheadFull` (never retried), the task's
    `task_key` naming the component (`<plain key>|ft:component:<name>`), so history finds it.
    A name that is neither a block document nor a preset raises `ConfigurationError` from the
    first `.submit()` / `.map()` that needs it.

    Args:
        inner: the runner that really runs tasks (an instance or a class); default
            `ThreadPoolTaskRunner()`. `ProcessPoolTaskRunner` and `DaskTaskRunner` work too:
            breaker state is shared through the store (`PREFECT_FT_STORE_URL`).
        policies: policy key -> policy (see above). The mapping is copied.
        tag_component: also tag guarded tasks `ft:component:<name>` (the UI's Runs page filters
            by tag). It costs: Prefect takes a tag-concurrency lease around every run of a
            tagged task (a service-thread hop per run and a lease request every 5 s, which
            stalls runs when SQLite is locked; DESIGN §10).

    Raises:
        ConfigurationError: a key or value of `policies` is malformed.
        TypeError: `inner` is not a Prefect `TaskRunner`, or `tag_component` is not a bool.

    Examples:
        ```python
        from prefect import flow, task
        from prefect.task_runners import ProcessPoolTaskRunner
        from prefect_ft import FaultTolerantTaskRunner

        @task(tags=["gpu"])
        def generate(prompt: str) -> str: ...

        @task
        def chunk(doc: str) -> list[str]: ...

        runner = FaultTolerantTaskRunner(
            inner=ProcessPoolTaskRunner(max_workers=4),
            policies={"chunk": "doc-processing", "tag:gpu": "ml-inference"},
        )

        @flow(task_runner=runner)
        def pipeline(docs: list[str]) -> None:
            chunks = chunk.map(docs)
            generate.map(chunks).wait()
        ```
    """

    def __init__(
        self,
        inner: TaskRunner[Any] | type[TaskRunner[Any]] | None = None,
        policies: Mapping[str, Any] | None = None,
        *,
        tag_component: bool = False,
    ) -> None:
        super().__init__()
        check_tag_component(tag_component)
        if inner is None:
            inner = ThreadPoolTaskRunner()
        elif isinstance(inner, type):
            inner = inner()
        if not isinstance(inner, TaskRunner):
            raise TypeError(f"inner must be a Prefect TaskRunner (got {type(inner).__name__})")
        self.inner = inner
        self.tag_component = tag_component
        self.policies: dict[str, Any] = dict(policies or {})
        for key, value in self.policies.items():
            _check(key, value)
        self._wrapped: dict[int, tuple[Any, Any]] = {}
        self._resolved: set[str] = set()

    def duplicate(self) -> FaultTolerantTaskRunner:
        return type(self)(
            inner=self.inner.duplicate(), policies=self.policies, tag_component=self.tag_component
        )

    def __eq__(self, other: object) -> bool:  # settings only, never runtime handles
        if not isinstance(other, FaultTolerantTaskRunner):
            return False
        return (
            self.policies == other.policies
            and self.tag_component == other.tag_component
            and _same_runner(self.inner, other.inner)
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        # Wrapped-task caches are per process (a process pool pickles the flow with its runner).
        state = self.__dict__.copy()
        state["_wrapped"], state["_resolved"] = {}, set()
        return state

    def __enter__(self) -> FaultTolerantTaskRunner:
        super().__enter__()
        try:
            self.inner.__enter__()
        except BaseException:
            super().__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
            self.inner.__exit__(exc_type, exc_value, traceback)
        finally:
            self._wrapped.clear()
            super().__exit__(exc_type, exc_value, traceback)

    def cancel_all(self) -> None:
        """Forwarded to the inner runner (the flow engine calls it on cancellation)."""
        cancel = getattr(self.inner, "cancel_all", None)
        if callable(cancel):
            cancel()

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, set[Any]] | None = None,
    ) -> Any:
        """Submit `task` to the inner runner, guarded when a policy matches it."""
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        return self.inner.submit(self.guarded(task), parameters, wait_for, dependencies)

    # `map` is the base class's: it calls `submit` once per element.

    def policy_for(self, task: Any) -> Any:
        """The policy that applies to `task` (None: run it unguarded)."""
        if task.name in self.policies:
            return self.policies[task.name]
        for key, value in self.policies.items():
            if key.startswith(TAG_PREFIX) and key[len(TAG_PREFIX) :] in task.tags:
                return value
        return self.policies.get(ANY_TASK)

    def guarded(self, task: Any) -> Any:
        """`task` itself, or a copy of it whose function runs behind its policy (cached)."""
        found = self._wrapped.get(id(task))
        if found is not None and found[0] is task:
            return found[1]
        spec = None if hasattr(task.fn, "__prefect_ft_site__") else self.policy_for(task)
        if spec is None:
            out = task
        else:
            if isinstance(spec, str) and spec not in self._resolved:
                resolve_policy(spec)  # an unknown name fails here, in the flow, not in every task
                self._resolved.add(spec)
            out = copy.copy(task)  # keeps every option
            out.fn = guard(task.fn, spec, task_name=task.name)
            # the component rides on the task_key, free per run (a tag costs a lease per run)
            out.task_key = component_task_key(task.task_key, spec_name(spec))
            if self.tag_component:
                out.tags = {*task.tags, component_tag(spec)}
            out.retry_condition_fn = compose_retry_condition(task.retry_condition_fn)
        self._wrapped[id(task)] = (task, out)  # holding `task` keeps its id from being reused
        return out


def _check(key: object, value: object) -> None:
    if not isinstance(key, str) or not key or key == TAG_PREFIX:
        raise ConfigurationError(
            f"policies keys must be a task name, 'tag:<tag>' or '*' (got {key!r})"
        )
    if value is not None:
        try:
            spec_name(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"policies[{key!r}]: {exc}") from None


def _same_runner(a: TaskRunner[Any], b: TaskRunner[Any]) -> bool:
    """Runner settings equality; runners without their own `__eq__` compare by pool size."""
    if type(a) is not type(b):
        return False
    if type(a).__eq__ is not object.__eq__:
        return a == b
    return getattr(a, "_max_workers", None) == getattr(b, "_max_workers", None)
