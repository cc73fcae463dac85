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

This module does not write block documents (see `prefect-ft blocks apply`) and does not build
breakers or bulkheads from the policies it returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from pydantic import ValidationError

from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.validation import check_store_url, require
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.presets import PRESETS, preset_config
from prefect_ft.settings import cache_ttl_seconds

__all__ = [
    "FTPolicy",
    "PolicyResolver",
    "aresolve_policy",
    "clear_policy_cache",
    "resolve_policy",
    "set_policy_clock",
]

_log = logging.getLogger("prefect_ft.policies")

# Searched in this order; a ComponentSpec describes the whole component, so it comes first.
_BLOCK_TYPES: tuple[type[ComponentSpec] | type[CircuitBreakerPolicy], ...] = (
    ComponentSpec,
    CircuitBreakerPolicy,
)


@dataclass(frozen=True, slots=True)
class FTPolicy:
    """A component's fault-tolerance policy, as the task wrapper uses it.

    Attributes:
        name: the component (and breaker) name; guarded task keys end in `|ft:component:<name>`.
        breaker: the breaker configuration.
        bulkhead: the bulkhead configuration, or None for no bulkhead.
        on_open: "fail" (end the run in a `CircuitOpen` state at once) or "wait" (block up to
            `max_wait_seconds` until the breaker admits the call).
        max_wait_seconds: the wait budget for `on_open="wait"`.
        store_url: where breaker state is shared (None: `PREFECT_FT_STORE_URL` or SQLite).
        source: where the policy came from: "block:<block-type-slug>/<document name>",
            "preset:<name>" or "object".
        depends_on: upstream component names (a `ComponentSpec`'s); while one is open, calls
            are deferred, then dead-lettered with reason `upstream-open` (`tasks.isolation`).
        defer_seconds: how long a call waits for its open upstreams.
        max_deferred: calls of this component that may wait at once; more are dead-lettered.
    """

    name: str
    breaker: BreakerConfig
    bulkhead: BulkheadConfig | None = None
    on_open: Literal["fail", "wait"] = "fail"
    max_wait_seconds: float = 30.0
    store_url: str | None = None
    source: str = "object"
    depends_on: tuple[str, ...] = ()
    defer_seconds: float = 5.0
    max_deferred: int = 100

    def __post_init__(self) -> None:
        require(self.on_open in ("fail", "wait"), "on_open", "'fail' or 'wait'", self.on_open)
        d = self.defer_seconds
        ok = isinstance(d, int | float) and math.isfinite(d) and d >= 0
        require(ok, "defer_seconds", "a finite number >= 0 seconds", d)
        n = self.max_deferred
        require(isinstance(n, int) and n >= 0, "max_deferred", "an int >= 0", n)
        require(self.name not in self.depends_on, "depends_on", "other components", self.depends_on)
        w = self.max_wait_seconds
        require(isinstance(w, int | float) and w >= 0, "max_wait_seconds", ">= 0 seconds", w)
        if self.store_url is not None:  # refused here, not by every guarded call
            check_store_url(self.store_url)


def _from_breaker_block(
    name: str, block: CircuitBreakerPolicy, source: str, bulkhead: BulkheadConfig | None = None
) -> FTPolicy:
    return FTPolicy(
        name=name,
        breaker=block.to_config(name),
        bulkhead=bulkhead,
        on_open=block.on_open,
        max_wait_seconds=block.max_wait_seconds,
        store_url=block.store_url,
        source=source,
    )


def _from_document(kind: type[Any], name: str, data: dict[str, Any]) -> FTPolicy:
    """Validate a block document's data and build its policy (ValidationError if invalid)."""
    source = f"block:{kind.get_block_type_slug()}/{name}"
    block = kind.model_validate(dict(data))  # Block.model_validate pops keys: pass a copy
    if isinstance(block, ComponentSpec):
        bulkhead = block.bulkhead.to_config(name) if block.bulkhead is not None else None
        policy = _from_breaker_block(name, block.breaker, source, bulkhead)
        b = block.breaker
        wanted = b.probe_interval_seconds is not None or b.probe_confirm_failures is not None
        if wanted and block.control_endpoint:  # active health checks ask its deep /health
            from prefect_ft.recovery.prober import DeepHealth

            check = DeepHealth(block.control_endpoint)
            policy = replace(policy, breaker=replace(policy.breaker, health_check=check))
        return replace(
            policy,
            depends_on=tuple(block.depends_on),
            defer_seconds=block.defer_seconds,
            max_deferred=block.max_deferred,
        )
    return _from_breaker_block(name, block, source)


class _ReadError(Exception):
    """The API could not be read, or a document of the name did not validate."""


def _read_failed(kind: type[Any], name: str, exc: Exception) -> _ReadError:
    where = f"block document {kind.get_block_type_slug()}/{name}"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        field = ".".join(str(p) for p in first["loc"]) or "(document)"
        return _ReadError(f"{where} is invalid: {field}: {first['msg']}")
    if isinstance(exc, ConfigurationError):
        return _ReadError(f"{where} is invalid: {exc}")
    return _ReadError(f"cannot read {where}: {type(exc).__name__}: {exc}")


def _read_sync(name: str) -> FTPolicy | None:
    """The policy of the first block document named `name`, or None when there is none."""
    with get_client(sync_client=True) as client:
        for kind in _BLOCK_TYPES:
            try:
                doc = client.read_block_document_by_name(name, kind.get_block_type_slug())
                return _from_document(kind, name, doc.data)
            except ObjectNotFound:
                continue
            except Exception as exc:
                raise _read_failed(kind, name, exc) from exc
    return None


async def _read_async(name: str) -> FTPolicy | None:
    """Async twin of `_read_sync`."""
    async with get_client() as client:
        for kind in _BLOCK_TYPES:
            try:
                doc = await client.read_block_document_by_name(name, kind.get_block_type_slug())
                return _from_document(kind, name, doc.data)
            except ObjectNotFound:
                continue
            except Exception as exc:
                raise _read_failed(kind, name, exc) from exc
    return None


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


def _direct(spec: object) -> FTPolicy | None:
    """The policy of a spec that needs no lookup, or None for a name."""
    if isinstance(spec, FTPolicy):
        return spec
    if isinstance(spec, CircuitBreakerPolicy):
        name = spec._block_document_name
        if not name:
            raise ConfigurationError(
                "an unsaved CircuitBreakerPolicy has no name: save it first, pass its name, "
                "or pass FTPolicy(name=..., breaker=policy.to_config(name))"
            )
        return _from_breaker_block(name, spec, f"block:{spec.get_block_type_slug()}/{name}")
    if isinstance(spec, str) and spec.strip():
        return None
    raise ConfigurationError(
        f"policy must be a non-empty name, an FTPolicy or a CircuitBreakerPolicy (got {spec!r})"
    )


def _ttl(ttl: float | None) -> float:
    value = cache_ttl_seconds() if ttl is None else ttl
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    require(ok and value >= 0, "ttl", ">= 0 seconds", value)
    return float(value)


def _preset_policy(name: str) -> FTPolicy:
    if name not in PRESETS:
        raise ConfigurationError(
            f"no ComponentSpec or CircuitBreakerPolicy block named {name!r} and no preset "
            f"{name!r}; presets: {', '.join(sorted(PRESETS))}"
        )
    return FTPolicy(name=name, breaker=preset_config(name), source=f"preset:{name}")


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
