"""The deployment definitions `prefect-ft serve` uses equal deployments/prefect.yaml, and every
templated parameter uses the explicit jinja form (no bare "{{ x }}" the server would wrap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from prefect_ft.cli.app import main
from prefect_ft.recovery.deploy import DEPLOYMENTS, triggers_of, yaml_deployments

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())


def test_prefect_yaml_holds_exactly_the_served_deployments() -> None:
    assert PREFECT_YAML["deployments"] == yaml_deployments()


def test_recovery_is_triggered_by_breaker_opened_and_fault_detected() -> None:
    recover = next(d for d in DEPLOYMENTS if d.name == "recover")
    expected = {tuple(t["expect"]) for t in recover.triggers}
    assert expected == {("prefect-ft.breaker.opened",), ("prefect-ft.fault.detected",)}
    by_event = {t["expect"][0]: t for t in recover.triggers}
    for trigger in recover.triggers:
        assert {"component", "failure_type", "reason"} <= set(trigger["parameters"])
    # a run for an opening that arrives after the breaker moved on (another recovery, a
    # readiness push) does nothing; a detected fault is recovered whatever the breaker says
    assert by_event["prefect-ft.breaker.opened"]["parameters"]["skip_if_closed"] is True
    assert "skip_if_closed" not in by_event["prefect-ft.fault.detected"]["parameters"]
    names = {d.name for d in DEPLOYMENTS}
    assert {"detect-failures", "replay-dead-letters", "recover", "health-sweep"} <= names
    sweep = next(d for d in DEPLOYMENTS if d.name == "health-sweep")
    assert sweep.interval_seconds and sweep.interval_seconds <= 60


def _bare_templates(value: Any, where: str) -> list[str]:
    """Strings with `{{` that are not the `template` of an explicit jinja mapping."""
    if isinstance(value, str):
        return [where] if "{{" in value else []
    if isinstance(value, dict):
        if value.get("__prefect_kind") == "jinja":
            return []
        return [p for k, v in value.items() for p in _bare_templates(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _bare_templates(v, f"{where}[{i}]")]
    return []


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_templates_use_the_explicit_jinja_form(deployment) -> None:
    for i, trigger in enumerate(deployment.triggers):
        assert _bare_templates(trigger.get("parameters", {}), f"trigger {i}") == []


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_triggers_validate_as_prefect_deployment_triggers(deployment) -> None:
    triggers = triggers_of(deployment)
    assert [t.name for t in triggers] == [t["name"] for t in deployment.triggers]
    for trigger, spec in zip(triggers, deployment.triggers, strict=True):
        assert trigger.expect == set(spec["expect"])
        assert trigger.parameters == spec["parameters"]


def test_serve_refuses_a_poll_outside_its_range(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--poll-seconds", "0", "--register-only"])
    assert exc.value.code == 1
    assert "--poll-seconds must be between 0.2 and 60.0, got 0.0" in capsys.readouterr().err


def test_serve_refuses_a_root_without_flows(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--root", str(tmp_path), "--register-only"])
    assert exc.value.code == 1
    assert "has no flows/ directory" in capsys.readouterr().err


def test_serve_names_a_missing_entrypoint(tmp_path, capsys, monkeypatch) -> None:
    import sys

    monkeypatch.chdir(tmp_path)  # serve moves to its root; monkeypatch moves back
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("PREFECT_LOGGING_EXTRA_LOGGERS", "PREFECT_RUNNER_POLL_FREQUENCY"):
        monkeypatch.setenv(name, "")
    (tmp_path / "flows").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--root", str(tmp_path), "--register-only"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "cannot load the flows: ValueError: deployment 'detect-failures': entrypoint file" in err


def test_ops_port_defaults_to_the_metrics_setting_then_9464(monkeypatch) -> None:
    from prefect_ft.cli.serve import _ops_port

    monkeypatch.delenv("PREFECT_FT_METRICS_PORT", raising=False)
    assert _ops_port(None, no_ops=False) == 9464
    monkeypatch.setenv("PREFECT_FT_METRICS_PORT", "9555")
    assert _ops_port(None, no_ops=False) == 9555
    assert _ops_port(0, no_ops=False) == 0
    assert _ops_port(0, no_ops=True) is None


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_prefect_deploy_reads_the_yaml_triggers_as_serve_builds_them(deployment) -> None:
    """`prefect deploy --all` turns prefect.yaml's triggers into automations with the function
    below; they equal what `prefect-ft serve` creates."""
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    spec = next(d for d in PREFECT_YAML["deployments"] if d["name"] == deployment.name)
    from_yaml = _initialize_deployment_triggers(deployment.name, spec.get("triggers", []))
    assert [t.model_dump() for t in from_yaml] == [t.model_dump() for t in triggers_of(deployment)]


def test_serve_starts_the_ops_server_beside_the_runner() -> None:
    import httpx

    from prefect_ft.cli.serve import _ops_server

    with _ops_server(0) as handle:
        assert handle is not None
        response = httpx.get(f"{handle.url}/health", timeout=10)
        assert response.status_code in (200, 503), response.text
        assert httpx.get(f"{handle.url}/metrics", timeout=10).status_code == 200
    with pytest.raises(httpx.HTTPError):  # stopped with the runner
        httpx.get(f"{handle.url}/health", timeout=2)
