"""Environment tunables, read in one place: `PREFECT_FT_*`."""

from __future__ import annotations

import os
from pathlib import Path

from prefect_ft.exceptions import ConfigurationError

__all__ = ["cache_ttl_seconds", "default_store_url", "metrics_port", "refresh_seconds"]


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a number in [{low}, {high}] (got {raw!r})"
        ) from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be in [{low}, {high}] (got {raw!r})")
    return value


def prefect_home() -> Path:
    """`PREFECT_HOME`, as Prefect itself defaults it."""
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def default_store_url() -> str:
    """`PREFECT_FT_STORE_URL`, else a SQLite file under `PREFECT_HOME` shared by local processes."""
    return os.environ.get("PREFECT_FT_STORE_URL") or f"sqlite:///{prefect_home() / 'prefect-ft.db'}"


def refresh_seconds() -> float:
    """How often each process re-reads shared breaker state (`PREFECT_FT_REFRESH_SECONDS`)."""
    return _float("PREFECT_FT_REFRESH_SECONDS", 0.2, 0.01, 60.0)


def cache_ttl_seconds() -> float:
    """How long a policy read from a Block is used before it is read again."""
    return _float("PREFECT_FT_CACHE_TTL", 10.0, 0.0, 3600.0)


def metrics_port() -> int | None:
    """`PREFECT_FT_METRICS_PORT`: serve Prometheus metrics on this loopback port when set."""
    raw = os.environ.get("PREFECT_FT_METRICS_PORT")
    return int(_float("PREFECT_FT_METRICS_PORT", 0, 1, 65535)) if raw else None
