"""Shared breaker state: `open_store(url)` picks a backend by URL scheme.

| URL | backend | shared by |
|---|---|---|
| `memory://` | `InMemoryBreakerStore` | the threads and tasks of one process |
| `sqlite:///PATH` | `SQLiteBreakerStore` (the default, under `PREFECT_HOME`) | every process on the machine |
| `redis://HOST:PORT/DB` | `RedisBreakerStore` (needs the `redis` extra) | many machines |
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from prefect_ft.exceptions import ConfigurationError
from prefect_ft.stores.base import BreakerStore, Versioned
from prefect_ft.stores.forking import after_fork_in_child
from prefect_ft.stores.memory import InMemoryBreakerStore

__all__ = ["BreakerStore", "InMemoryBreakerStore", "Versioned", "open_store", "shared_store"]

_SCHEMES = ("memory://", "sqlite:///PATH", "redis://HOST:PORT/DB")


def open_store(url: str) -> BreakerStore:
    """Open the store named by `url`.

    Args:
        url: `memory://`, `sqlite:///PATH` or `redis://HOST:PORT/DB`.

    Raises:
        ConfigurationError: the URL cannot be parsed or names an unknown scheme.

    Examples:
        ```python
        from prefect_ft.stores import open_store
        store = open_store("sqlite:////tmp/prefect-ft.db")
        ```
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"store url must look like one of {', '.join(_SCHEMES)} (got {url!r})"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(
            f"store url could not be parsed ({exc}); it must look like one of "
            f"{', '.join(_SCHEMES)} (got {url!r})"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return InMemoryBreakerStore(url=url)
    if scheme == "sqlite":
        from prefect_ft.stores.sqlite import SQLiteBreakerStore

        path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
        if not path:
            raise ConfigurationError(
                f"store url: sqlite needs a path, as in sqlite:///PATH (got {url!r})"
            )
        return SQLiteBreakerStore(path, url=url)
    if scheme in ("redis", "rediss"):
        from prefect_ft.stores.redis import RedisBreakerStore

        return RedisBreakerStore(url)
    raise ConfigurationError(
        f"store url: unknown scheme {parts.scheme!r}; allowed: {', '.join(_SCHEMES)} (got {url!r})"
    )


_opened: dict[tuple[str, int], BreakerStore] = {}
_opened_lock = threading.Lock()


def _relock_opened() -> None:
    global _opened_lock
    _opened_lock = threading.Lock()


after_fork_in_child(_relock_opened)


def shared_store(
    store: BreakerStore | str | None = None, *, clock: Callable[[], float] | None = None
) -> BreakerStore:
    """The store to use: a given object as is; a URL opened once per process and reused.

    `None` means `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`. A `memory://` store
    with a custom `clock` (tests) is private to the caller, so it shares that clock.
    """
    if store is not None and not isinstance(store, str):
        return store
    from prefect_ft.settings import default_store_url

    url = store or default_store_url()
    if clock is not None and url.startswith("memory://"):
        return InMemoryBreakerStore(clock=clock, url=url)
    key = (url, os.getpid())
    with _opened_lock:
        found = _opened.get(key)
        if found is None:
            found = _opened[key] = open_store(url)
        return found
