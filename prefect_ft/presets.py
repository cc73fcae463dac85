"""Breaker presets for the four RAN pipeline components (DESIGN §1): data, in one place."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from prefect_ft.core.conditions import ConsecutiveFailures
from prefect_ft.core.config import BreakerConfig
from prefect_ft.exceptions import ConfigurationError

__all__ = ["PRESETS", "preset_config"]

# component -> (failures before opening, open seconds, recovery ramp seconds, recovery action)
PRESETS: MappingProxyType[str, dict[str, Any]] = MappingProxyType(
    {
        "doc-processing": {
            "failures": 5,
            "open_seconds": 30.0,
            "recovery_seconds": 10.0,
            "action": "graceful-restart",
        },
        "ml-inference": {
            "failures": 3,
            "open_seconds": 60.0,
            "recovery_seconds": 20.0,
            "action": "model-reload",
        },
        "ipc": {
            "failures": 8,
            "open_seconds": 5.0,
            "recovery_seconds": 2.0,
            "action": "connection-reset",
        },
        "quality-validation": {
            "failures": 4,
            "open_seconds": 15.0,
            "recovery_seconds": 5.0,
            "action": "validation-reset",
        },
    }
)


def preset_config(name: str, **overrides: Any) -> BreakerConfig:
    """The `BreakerConfig` of a preset, with fields overridden by keyword.

    Raises:
        ConfigurationError: `name` is not a preset.
    """
    try:
        p = PRESETS[name]
    except KeyError:
        raise ConfigurationError(
            f"preset must be one of {', '.join(sorted(PRESETS))} (got {name!r})"
        ) from None
    fields: dict[str, Any] = {
        "name": name,
        "trip": ConsecutiveFailures(p["failures"]),
        "open_seconds": p["open_seconds"],
        "max_open_seconds": p["open_seconds"] * 10,
        "half_open_calls": 1,
        "recovery_seconds": p["recovery_seconds"],
        "probe_ttl_seconds": max(10.0, p["open_seconds"]),
    }
    fields.update(overrides)
    return BreakerConfig(**fields)
