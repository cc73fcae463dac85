"""`FTPolicy` and where one comes from: a block document read from the API, a block, a preset.

`prefect_ft.tasks.policies` decides when to look a name up and what to keep when a look-up
fails (the per-name TTL cache); this module holds what one look-up does: read the first block
document of the name (`ComponentSpec`, then `CircuitBreakerPolicy`) with the sync or the async
client, validate it, and convert it, a block object or a preset into the frozen `FTPolicy`.
Split from the resolver so the cache and the conversions each stay one concern.
"""

from __future__ import annotations

import math
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

__all__ = ["FTPolicy"]

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


def _preset_policy(name: str) -> FTPolicy:
    if name not in PRESETS:
        raise ConfigurationError(
            f"no ComponentSpec or CircuitBreakerPolicy block named {name!r} and no preset "
            f"{name!r}; presets: {', '.join(sorted(PRESETS))}"
        )
    return FTPolicy(name=name, breaker=preset_config(name), source=f"preset:{name}")
