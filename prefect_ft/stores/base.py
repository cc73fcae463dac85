"""The `BreakerStore` protocol: versioned records with compare-and-set, and the store clock.

A store keeps opaque text records under keys. Every record has a version (0 = absent). The
only write is `cas`: it succeeds when the caller's expected version is current, which makes every
breaker transition atomic across processes (exactly one writer wins). Every answer carries the
store's clock, so processes on one machine or many agree on lease expiry and open windows.

This module does not decide anything: decisions live in `prefect_ft.core`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["BreakerStore", "Versioned"]


@dataclass(frozen=True, slots=True)
class Versioned:
    """A record as read from a store.

    Attributes:
        data: the record's text, or None when the key is absent.
        version: the record's version; 0 when absent, then 1, 2, ... per successful `cas`.
        store_time: the store's clock in seconds at the moment of the answer.
    """

    data: str | None
    version: int
    store_time: float


@runtime_checkable
class BreakerStore(Protocol):
    """Shared state for breakers and bulkheads.

    Implementations raise `prefect_ft.exceptions.StoreUnavailableError` (never anything else)
    when the backend cannot be reached; callers degrade to local state on it.

    Attributes:
        url: the URL the store was opened with (`memory://`, `sqlite:///PATH`, `redis://H:P/DB`).
        round_trips: how many requests went to the backend so far (benchmarks print it).
    """

    url: str
    round_trips: int

    def read(self, key: str) -> Versioned:
        """Read one record."""
        ...

    def read_many(self, keys: list[str]) -> dict[str, Versioned]:
        """Read several records in one round trip."""
        ...

    def cas(self, key: str, expected_version: int, data: str) -> tuple[bool, Versioned]:
        """Write `data` if the current version equals `expected_version` (0 = absent).

        Returns:
            `(True, new)` with `new.version == expected_version + 1` on success, else
            `(False, current)`.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove a record (admin reset, tests)."""
        ...

    def time(self) -> float:
        """The store's clock in seconds."""
        ...

    def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
        ...
