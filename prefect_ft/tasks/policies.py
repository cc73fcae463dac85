"""`FTPolicy`: what one fault-tolerant task runs under, and `resolve_policy` to find it by name.

Resolution order for a name (DESIGN §2):

1. a `ComponentSpec` block document of that name (breaker and bulkhead from it, both named
   after the document; its breaker is usually a reference to the `CircuitBreakerPolicy`
   document, so editing either is seen);
2. a `CircuitBreakerPolicy` block document of that name (no bulkhead);
3. a built-in preset of that name (`prefect_ft.presets`; no bulkhead);
4. otherwise `ConfigurationError`, naming what was tried.

Each result is cached per name for `ttl` seconds (default `PREFECT_FT_CACHE_TTL`, 10 s), so the
per-call path reads nothing from the API; the first resolve after the TTL re-reads the documents,
which is how an edit made in the Prefect UI reaches running tasks without a redeploy. When a
re-read fails (API unreachable, or a document that no longer validates) the last valid policy is
kept, a warning naming the cause is logged on the "prefect_ft.policies" logger and the read is
retried one TTL later. That holds for any failure: a server error, a document that fails
validation (a `store_url` no store can be built from included), a document deleted when no
preset has its name, or an unexpected error. With no valid policy ever seen,
`ConfigurationError` is raised. A re-read that finds the same policy returns the very same
`FTPolicy` object, so callers may cache on its identity.

How one document is read and converted: `prefect_ft.tasks.policy_sources`. This module does
not write block documents (see `prefect-ft blocks apply`) and does not build breakers or
bulkheads from the policies it returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prefect_ft.blocks import CircuitBreakerPolicy
from prefect_ft.core.validation import require
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.settings import cache_ttl_seconds
from prefect_ft.tasks.policy_sources import (
    FTPolicy,
    _direct,
    _preset_policy,
    _read_async,
    _read_sync,
    _ReadError,
)

__all__ = [
    "FTPolicy",
    "PolicyResolver",
    "aresolve_policy",
    "clear_policy_cache",
    "resolve_policy",
    "set_policy_clock",
]

_log = logging.getLogger("prefect_ft.policies")


@dataclass(slots=True)
class _Entry:
    policy: FTPolicy
    expires_at: float


class PolicyResolver:
    """Finds policies by name and caches them per name for a TTL.

    `resolve_policy` uses one module-wide resolver; build your own to isolate a cache or to
    drive time by hand in tests.

    Args:
        clock: a monotonic time source in seconds (default `time.monotonic`).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # guards the dicts only; never held across a read
        self._refreshing: set[str] = set()  # names being re-read right now

    def clear(self) -> None:
        """Forget every cached policy."""
        with self._lock:
            self._entries.clear()

    def resolve(
        self, spec: str | FTPolicy | CircuitBreakerPolicy, *, ttl: float | None = None
    ) -> FTPolicy:
        """See `resolve_policy`."""
        direct = _direct(spec)
        if direct is not None:
            return direct
        assert isinstance(spec, str)
        ttl = _ttl(ttl)
        cached = self._fresh_or_claim(spec)
        if cached is not None:
            return cached
        try:  # stored (or kept) before the claim ends, so no second reader slips in between
            try:
                found = _read_sync(spec)
                return self._store(spec, ttl, found)
            except Exception as exc:  # any failure: a policy that worked beats failing every call
                return self._keep_last(spec, ttl, exc)
        finally:
            self._unclaim(spec)

    async def aresolve(
        self, spec: str | FTPolicy | CircuitBreakerPolicy, *, ttl: float | None = None
    ) -> FTPolicy:
        """Async twin of `resolve`: the same cache, read with the async client."""
        direct = _direct(spec)
        if direct is not None:
            return direct
        assert isinstance(spec, str)
        ttl = _ttl(ttl)
        cached = self._fresh_or_claim(spec)
        if cached is not None:
            return cached
        try:  # stored (or kept) before the claim ends, so no second reader slips in between
            try:
                found = await _read_async(spec)
                return self._store(spec, ttl, found)
            except Exception as exc:  # any failure: a policy that worked beats failing every call
                return self._keep_last(spec, ttl, exc)
        finally:
            self._unclaim(spec)

    def _fresh_or_claim(self, name: str) -> FTPolicy | None:
        """The policy to use now, or None when the caller must read it (and is now reading).

        While one caller re-reads an expired policy, the others keep the last one instead of
        reading too: without this, every worker thread of a flow re-read both block documents
        each time the TTL expired (16 API requests in a flow of 20 task runs on 8 threads).
        """
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and (self.clock() < entry.expires_at or name in self._refreshing):
                return entry.policy
            self._refreshing.add(name)
        return None

    def _unclaim(self, name: str) -> None:
        with self._lock:
            self._refreshing.discard(name)

    def _store(self, name: str, ttl: float, found: FTPolicy | None) -> FTPolicy:
        policy = found if found is not None else _preset_policy(name)
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.policy == policy:
                policy = entry.policy  # unchanged: keep the object, so callers may key on it
            self._entries[name] = _Entry(policy, self.clock() + ttl)
        return policy

    def _keep_last(self, name: str, ttl: float, exc: Exception) -> FTPolicy:
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:  # retry one TTL later, not on every call
                entry.expires_at = self.clock() + ttl
        if entry is None and isinstance(exc, ConfigurationError):
            raise exc  # already names what was tried (an unknown name, a bad argument)
        cause = (
            str(exc)
            if isinstance(exc, _ReadError | ConfigurationError)
            else (f"{type(exc).__name__}: {exc}")
        )
        if entry is None:
            raise ConfigurationError(f"cannot resolve policy {name!r}: {cause}") from exc
        _log.warning(
            "%s; keeping the last valid policy of %r (%s)", cause, name, entry.policy.source
        )
        return entry.policy


def _ttl(ttl: float | None) -> float:
    value = cache_ttl_seconds() if ttl is None else ttl
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    require(ok and value >= 0, "ttl", ">= 0 seconds", value)
    return float(value)


_RESOLVER = PolicyResolver()


def resolve_policy(
    spec: str | FTPolicy | CircuitBreakerPolicy, *, ttl: float | None = None
) -> FTPolicy:
    """The `FTPolicy` for a name, a policy object or a `CircuitBreakerPolicy` block.

    A name is looked up as described in the module docstring and cached for `ttl` seconds; an
    `FTPolicy` is returned as is; a loaded or saved `CircuitBreakerPolicy` is converted under its
    document name.

    Args:
        spec: a component name, an `FTPolicy`, or a saved `CircuitBreakerPolicy`.
        ttl: seconds a name's policy is reused before the documents are read again
            (default `PREFECT_FT_CACHE_TTL`, 10 s).

    Returns:
        The policy.

    Raises:
        ConfigurationError: no block document and no preset has that name; a document exists
            but is invalid (or unreadable) and no valid policy was seen before; or `spec` is an
            unsaved block.

    Examples:
        ```python
        from prefect_ft.tasks.policies import resolve_policy

        policy = resolve_policy("ml-inference")  # a block document if saved, else the preset
        policy.breaker.open_seconds
        ```
    """
    return _RESOLVER.resolve(spec, ttl=ttl)


async def aresolve_policy(
    spec: str | FTPolicy | CircuitBreakerPolicy, *, ttl: float | None = None
) -> FTPolicy:
    """Async twin of `resolve_policy` (same cache)."""
    return await _RESOLVER.aresolve(spec, ttl=ttl)


def clear_policy_cache() -> None:
    """Forget every policy cached by `resolve_policy`."""
    _RESOLVER.clear()


def set_policy_clock(clock: Callable[[], float] | None) -> Callable[[], float]:
    """Replace the time source of `resolve_policy`'s cache (None: `time.monotonic`).

    Returns:
        The previous time source, to restore it.
    """
    previous = _RESOLVER.clock
    _RESOLVER.clock = clock if clock is not None else time.monotonic
    return previous
