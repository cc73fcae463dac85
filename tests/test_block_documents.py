"""The preset block documents in `blocks/` validate and match `prefect_ft/presets.py` (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prefect_ft.blocks import BulkheadPolicy, CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
from prefect_ft.cli.app import BLOCK_TYPES, DocumentError, load_documents
from prefect_ft.presets import PRESETS, preset_config

BLOCKS = Path(__file__).resolve().parents[1] / "blocks"
LEAVES = (CircuitBreakerPolicy, BulkheadPolicy, RecoveryPolicy)


def _read(kind: type, name: str) -> dict:
    return yaml.safe_load((BLOCKS / kind.get_block_type_slug() / f"{name}.yaml").read_text())


def test_one_document_per_type_and_preset() -> None:
    found = {(f.parent.name, f.stem) for f in BLOCKS.glob("*/*.y*ml")}
    assert found == {(slug, name) for slug in BLOCK_TYPES for name in PRESETS}


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("kind", LEAVES, ids=lambda k: k.__name__)
def test_policy_documents_validate(kind: type, name: str) -> None:
    data = _read(kind, name)
    assert set(data) == set(kind.model_fields), "every field is written out"
    kind.model_validate(data)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_breaker_documents_match_the_presets(name: str) -> None:
    policy = CircuitBreakerPolicy.model_validate(_read(CircuitBreakerPolicy, name))
    assert policy.to_config(name) == preset_config(name)
    assert policy.half_open_calls == 1
    assert 0 < policy.recovery_seconds < policy.open_seconds


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_recovery_documents_use_the_preset_action(name: str) -> None:
    recovery = RecoveryPolicy.model_validate(_read(RecoveryPolicy, name))
    assert recovery.action == PRESETS[name]["action"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_bulkhead_documents_build_a_config(name: str) -> None:
    bulkhead = BulkheadPolicy.model_validate(_read(BulkheadPolicy, name)).to_config(name)
    assert bulkhead.name == name and bulkhead.max_concurrent >= 1


def test_component_specs_reference_their_policies() -> None:
    docs = {d.label: d for d in load_documents(BLOCKS)}
    assert len(docs) == 16
    for name in PRESETS:
        doc = docs[f"ft-component-spec/{name}"]
        assert doc.refs == {"breaker": name, "bulkhead": name, "recovery": name}
        spec = doc.block
        assert isinstance(spec, ComponentSpec) and spec.component == name
        assert spec.breaker.to_config(name) == preset_config(name)
        assert spec.bulkhead is not None and spec.recovery is not None
        assert set(spec.depends_on) <= set(PRESETS) - {name}
    edges = {(up, d.block.component) for d in docs.values() for up in d.block.model_dump().get("depends_on", [])}  # fmt: skip
    # no ml-inference -> ipc edge: ipc runs inside ml-inference's calls, and waiting for that
    # breaker from inside its own half-open probe stalled the demo's pipeline
    assert edges == {("doc-processing", "ml-inference"), ("ipc", "quality-validation")}


def test_load_documents_refuses_bad_files_offline(tmp_path: Path) -> None:
    (tmp_path / "ft-bulkhead-policy").mkdir()
    bad = tmp_path / "ft-bulkhead-policy" / "x.yaml"
    bad.write_text("max_concurrent: 0\n")
    with pytest.raises(DocumentError, match=r"x\.yaml: max_concurrent: Input should be greater"):
        load_documents(tmp_path)
    bad.write_text("- not a mapping\n")
    with pytest.raises(DocumentError, match="expected a mapping"):
        load_documents(tmp_path)
    bad.unlink()
    (tmp_path / "ft-nonsense").mkdir()
    with pytest.raises(DocumentError, match="unknown block type directory"):
        load_documents(tmp_path)


def test_component_must_be_named_like_its_document(tmp_path: Path) -> None:
    (tmp_path / "ft-circuit-breaker-policy").mkdir()
    (tmp_path / "ft-circuit-breaker-policy" / "a.yaml").write_text("failure_threshold: 2\n")
    (tmp_path / "ft-component-spec").mkdir()
    spec = tmp_path / "ft-component-spec" / "a.yaml"
    spec.write_text("component: b\nbreaker: a\n")
    with pytest.raises(DocumentError, match="component: must equal the document name 'a'"):
        load_documents(tmp_path)
    spec.write_text("component: a\nbreaker: a\n")
    _breaker, spec_doc = load_documents(tmp_path)
    assert spec_doc.refs == {"breaker": "a"} and spec_doc.block.breaker.failure_threshold == 2
