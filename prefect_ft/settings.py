"""Environment tunables, read in one place: `PREFECT_FT_*`."""

from __future__ import annotations

import math
import os
from pathlib import Path

from prefect_ft.exceptions import ConfigurationError

__all__ = [
    "cache_ttl_seconds",
    "deadletter_key",
    "deadletter_key_block",
    "deadletter_retention_seconds",
    "default_store_url",
    "log_format",
    "memory_limits_mb",
    "metrics_port",
    "refresh_seconds",
    "resource_sample_seconds",
]


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


LOG_FORMATS = ("console", "json")


def log_format(value: str | None = None) -> str:
    """`PREFECT_FT_LOG_FORMAT` (or `value`): `console` (default) or `json`."""
    raw = value if value is not None else os.environ.get("PREFECT_FT_LOG_FORMAT")
    fmt = (raw or "console").strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigurationError(
            f"PREFECT_FT_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} (got {raw!r})"
        )
    return fmt


def resource_sample_seconds() -> float:
    """`PREFECT_FT_RESOURCE_SAMPLE_SECONDS`: at most one resource sample per component per process
    this often (default 10 s; 0 turns sampling off)."""
    return _float("PREFECT_FT_RESOURCE_SAMPLE_SECONDS", 10.0, 0.0, 86400.0)


def memory_limits_mb() -> dict[str, float]:
    """`PREFECT_FT_MEMORY_LIMIT_MB`: the memory limit that resource samples report, in MB.

    Either one number for every component (`"4096"`) or `component=MB` pairs separated by commas,
    with `*` for the rest (`"ml-inference=12288,*=4096"`). Empty: the limit is detected (see
    `prefect_ft.history.resources.detected_memory_limit_mb`).
    """
    raw = (os.environ.get("PREFECT_FT_MEMORY_LIMIT_MB") or "").strip()
    out: dict[str, float] = {}
    if not raw:
        return out
    for part in raw.split(","):
        name, sep, value = part.strip().rpartition("=")
        name = name.strip() if sep else "*"
        try:
            mb = float(value)
        except ValueError:
            mb = math.nan
        if not name or not math.isfinite(mb) or mb <= 0:
            raise ConfigurationError(
                "PREFECT_FT_MEMORY_LIMIT_MB must be a positive number of MB or "
                f"'component=MB,*=MB' pairs (got {raw!r})"
            )
        out[name] = mb
    return out


def deadletter_retention_seconds() -> float:
    """`PREFECT_FT_DEADLETTER_RETENTION_SECONDS`: how long done and superseded dead letters are
    kept after they finish (default 7 days; 0 deletes them at the next replay)."""
    return _float("PREFECT_FT_DEADLETTER_RETENTION_SECONDS", 7 * 86400.0, 0.0, 10 * 365 * 86400.0)


def deadletter_key() -> str | None:
    """`PREFECT_FT_DEADLETTER_KEY`: the key that signs dead-letter payloads (see
    `prefect_ft.deadletter.signing`)."""
    return os.environ.get("PREFECT_FT_DEADLETTER_KEY") or None


def deadletter_key_block() -> str | None:
    """`PREFECT_FT_DEADLETTER_KEY_BLOCK`: the name of a Prefect Secret block holding that key."""
    return os.environ.get("PREFECT_FT_DEADLETTER_KEY_BLOCK") or None
