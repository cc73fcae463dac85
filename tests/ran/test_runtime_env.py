"""A process that replays the demo's dead letters (a served `replay-dead-letters` run) builds the
pipeline's runtime from `RUNTIME_ENV`, so the replayed step writes where the pipeline reads."""

from __future__ import annotations

import json

import pytest

from prefect_ft.demo.ran import runtime as rt_mod


@pytest.fixture(autouse=True)
def _unconfigured():
    rt_mod.configure(None)
    yield
    rt_mod.configure(None)


def test_an_unconfigured_process_builds_the_runtime_the_environment_names(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(
        "PREFECT_FT_DEMO_RUNTIME",
        json.dumps({"work_dir": str(tmp_path / "out"), "model_url": "http://127.0.0.1:9"}),
    )
    rt = rt_mod.runtime()
    assert rt.work_dir == tmp_path / "out"
    assert rt.client.url == "http://127.0.0.1:9"
    assert rt.injector is None and rt.progress is None  # no faults, no progress bar there
    assert rt_mod.runtime() is rt  # once per process


def test_a_malformed_runtime_environment_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("PREFECT_FT_DEMO_RUNTIME", '{"work_dir": "x"}')
    with pytest.raises(RuntimeError, match="PREFECT_FT_DEMO_RUNTIME: must be JSON with work_dir"):
        rt_mod.runtime()


def test_without_it_the_runtime_is_still_required(monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_FT_DEMO_RUNTIME", raising=False)
    with pytest.raises(RuntimeError, match="runtime is not configured"):
        rt_mod.runtime()
