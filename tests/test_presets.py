"""The four component presets (DESIGN §1) are exactly as specified."""

from __future__ import annotations

import pytest

from prefect_ft.presets import PRESETS, preset_config


@pytest.mark.parametrize(
    ("name", "failures", "open_seconds"),
    [
        ("doc-processing", 5, 30),
        ("ml-inference", 3, 60),
        ("ipc", 8, 5),
        ("quality-validation", 4, 15),
    ],
)
def test_preset_values(name: str, failures: int, open_seconds: float) -> None:
    cfg = preset_config(name)
    assert cfg.trip.threshold == failures
    assert cfg.open_seconds == open_seconds
    assert cfg.half_open_calls == 1
    assert 0 < cfg.recovery_seconds <= open_seconds


def test_exactly_four_presets() -> None:
    assert sorted(PRESETS) == ["doc-processing", "ipc", "ml-inference", "quality-validation"]


def test_override_is_validated() -> None:
    from prefect_ft.exceptions import ConfigurationError

    assert preset_config("ipc", open_seconds=7).open_seconds == 7
    with pytest.raises(ConfigurationError, match="open_seconds must be > 0"):
        preset_config("ipc", open_seconds=0)
