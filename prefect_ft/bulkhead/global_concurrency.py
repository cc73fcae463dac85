"""`GlobalConcurrencyBulkhead`: a bulkhead on a Prefect global concurrency limit (server-side).

Prefect's server keeps the count, so the limit holds across every worker and machine; this module
only maps Prefect's errors to `BulkheadFullError` and `ConfigurationError`. It imports Prefect on
first use, never at import. Import it from `prefect_ft.bulkhead` (or `prefect_ft`), which
re-exports it next to `Bulkhead`. It keeps no local count and uses no `prefect_ft` store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from typing import Any

from prefect_ft.bulkhead.slots import _Decorates, _off_loop
from prefect_ft.core.validation import require
from prefect_ft.exceptions import BulkheadFullError, ConfigurationError

__all__ = ["GlobalConcurrencyBulkhead"]


class GlobalConcurrencyBulkhead(_Decorates):
    """A bulkhead on a Prefect global concurrency limit, shared by every worker and machine.

    !!! warning
        Each acquire costs about 0.1 s (HTTP calls, a lease-renewal thread, events), and a full
        limit is polled at the server's `Retry-After`. Use it for whole flows or coarse stages
        (a call of 5-10 s or more), never per call: use `Bulkhead` for that.

    The limit must exist (`prefect gcl create NAME --limit N`, or the UI): acquisition is strict,
    so a missing or inactive limit raises `ConfigurationError` instead of silently not limiting.

    Args:
        limit_name: the global concurrency limit's name.
        occupy: slots one holder takes.
        max_wait_seconds: how long to wait for the slots; None waits as long as it takes,
            0 gives up at the first refusal.
        lease_seconds: the server frees the slots of a crashed holder after this long (60 s to 1 day).

    Examples:
        ```python
        from prefect import flow
        from prefect_ft.bulkhead.permits import GlobalConcurrencyBulkhead

        model_server = GlobalConcurrencyBulkhead("ml-inference", max_wait_seconds=600)

        @flow
        @model_server
        def generate_batch(batch_id: str) -> None: ...
        ```
    """

    def __init__(
        self,
        limit_name: str,
        occupy: int = 1,
        *,
        max_wait_seconds: float | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        require(isinstance(limit_name, str) and limit_name != "", "limit_name", "a non-empty string", limit_name)  # fmt: skip
        require(isinstance(occupy, int) and not isinstance(occupy, bool) and occupy >= 1, "occupy", "an integer >= 1", occupy)  # fmt: skip
        w = max_wait_seconds
        require(w is None or (isinstance(w, int | float) and 0 <= w < float("inf")), "max_wait_seconds", ">= 0 seconds or None", w)  # fmt: skip
        t = lease_seconds
        require(isinstance(t, int | float) and 60 <= t <= 86400, "lease_seconds", "in [60, 86400] seconds", t)  # fmt: skip
        self.limit_name, self.occupy = limit_name, occupy
        self.max_wait_seconds, self.lease_seconds = max_wait_seconds, lease_seconds

    def __repr__(self) -> str:
        return f"GlobalConcurrencyBulkhead({self.limit_name!r}, occupy={self.occupy})"

    def _options(self) -> dict[str, Any]:
        w = self.max_wait_seconds
        return {
            "occupy": self.occupy,
            "timeout_seconds": w or None,
            "max_retries": 0 if w == 0 else None,  # 0: one try, no wait at the server's pace
            "lease_duration": self.lease_seconds,
            "strict": True,
        }

    def _error(self, exc: Exception, start: float, size: int | None) -> Exception | None:
        """The error to raise instead of `exc` (None: let `exc` through unchanged).

        `size` is the limit's size, read only when `_is_full(exc)`, for the message.
        """
        if size is not None:
            return BulkheadFullError(self.limit_name, size, time.monotonic() - start)
        from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

        if isinstance(exc, ConcurrencySlotAcquisitionError) and exc.__cause__ is None:
            # with strict=True this is raised without a cause exactly when no active limit exists
            return ConfigurationError(
                f"limit_name must name an existing, active global concurrency limit "
                f"(got {self.limit_name!r}); create it with "
                f"`prefect gcl create {self.limit_name} --limit N`"
            )
        return None

    @contextmanager
    def permit(self) -> Iterator[None]:
        """Hold the limit's slots for the `with` block (see the class for the costs)."""
        from prefect.concurrency.sync import concurrency

        start = time.monotonic()
        with ExitStack() as stack:
            try:
                stack.enter_context(concurrency(self.limit_name, **self._options()))
            except Exception as exc:
                size = self._size() if _is_full(exc) else None
                if (error := self._error(exc, start, size)) is None:
                    raise
                raise error from exc
            yield

    @asynccontextmanager
    async def apermit(self) -> AsyncIterator[None]:
        """Async twin of `permit`."""
        from prefect.concurrency.asyncio import concurrency

        start = time.monotonic()
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(concurrency(self.limit_name, **self._options()))
            except Exception as exc:
                size = await _off_loop(self._size) if _is_full(exc) else None
                if (error := self._error(exc, start, size)) is None:
                    raise
                raise error from exc
            yield

    def _size(self) -> int:
        """The limit's size for `BulkheadFullError` (0 when it cannot be read)."""
        from prefect import get_client

        try:
            with get_client(sync_client=True) as client:
                return int(client.read_global_concurrency_limit_by_name(self.limit_name).limit)
        except Exception:  # only a message detail: never hide the real error behind this one
            return 0


def _is_full(exc: Exception) -> bool:
    """A timed-out wait, or (with `max_retries=0`) the server's first "locked" (423) answer."""
    from prefect.concurrency.asyncio import (
        AcquireConcurrencySlotTimeoutError,
        ConcurrencySlotAcquisitionError,
    )

    status = getattr(getattr(exc.__cause__, "response", None), "status_code", None)
    return isinstance(exc, AcquireConcurrencySlotTimeoutError) or (
        isinstance(exc, ConcurrencySlotAcquisitionError) and status == 423
    )
