"""The components whose admitted call is running in this context.

A dependent component's call can run inside its upstream's call (the RAN pipeline's `ipc` hop
runs inside an `ml-inference` call). Isolation must not make such a call wait for the upstream:
the upstream already admitted the call we are inside of, and while it is HALF_OPEN its only
probe slot is that very call, so waiting would wait on ourselves until the bound, dead-letter
the inner call and fail the probe. A context variable carries the names: it follows the call
into nested sync calls and awaited coroutines, and Prefect copies the context into the threads
its task runners start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["admitted", "running"]

_running: ContextVar[frozenset[str]] = ContextVar("prefect_ft_admitted", default=frozenset())


@contextmanager
def admitted(component: str) -> Iterator[None]:
    """Mark `component`'s call as running (admitted by its breaker) for the block's duration."""
    token = _running.set(_running.get() | {component})
    try:
        yield
    finally:
        _running.reset(token)


def running() -> frozenset[str]:
    """Components whose admitted call encloses the current code."""
    return _running.get()
