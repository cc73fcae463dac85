"""Construction-time checks whose messages name the field and the allowed range."""

from __future__ import annotations

from typing import Any

from prefect_ft.exceptions import ConfigurationError

__all__ = ["require"]


def require(ok: bool, field: str, allowed: str, got: Any) -> None:
    """Raise `ConfigurationError("<field> must be <allowed> (got <got>)")` unless `ok`."""
    if not ok:
        raise ConfigurationError(f"{field} must be {allowed} (got {got!r})")
