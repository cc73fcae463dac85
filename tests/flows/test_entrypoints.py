"""Every entrypoint in deployments/prefect.yaml loads as a flow, and its parameters match."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from tests.astutil import parse_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]


def test_there_are_deployments() -> None:
    assert {d["name"] for d in DEPLOYMENTS} >= {"detect-failures", "replay-dead-letters"}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_loads_and_accepts_its_parameters(deployment: dict, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    accepted = set(flow.parameters.properties)
    assert set(deployment.get("parameters", {})) <= accepted
    for trigger in deployment.get("triggers", []):
        assert set(trigger.get("parameters", {})) <= accepted


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_defines_its_flow_with_a_def(deployment: dict) -> None:
    """`prefect deploy` falls back to parsing the file; a re-exported flow would break that."""
    path, name = deployment["entrypoint"].split(":")
    tree = parse_file(ROOT / path)
    # Prefect's parser (prefect/flows.py) accepts `async def` flows as well
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    defs = [n for n in tree.body if isinstance(n, kinds) and n.name == name]
    assert defs and any("flow" in ast.unparse(d) for d in defs[0].decorator_list), (
        f"{path} must define `@flow def {name}`"
    )
