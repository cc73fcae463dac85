"""Blocks, policy resolution and `prefect-ft blocks apply` against the session's Prefect server.

Documents named after a preset would change what other tests resolve, so every test deletes
the documents it wrote and clears the policy cache when it ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import ValidationError

import prefect_ft.blocks  # noqa: F401  (registers the block classes, as prefect_ft/__init__ will)
from prefect_ft.blocks import BulkheadPolicy, CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
from prefect_ft.cli.app import BLOCK_TYPES, app
from prefect_ft.core.conditions import AnyOf, ConsecutiveFailures, FailureRate, SlowCallRate
from prefect_ft.core.config import BreakerConfig
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.presets import preset_config
from prefect_ft.tasks import policies
from prefect_ft.tasks.policies import FTPolicy, aresolve_policy, resolve_policy

REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    previous = policies.set_policy_clock(fake)
    policies.clear_policy_cache()
    yield fake
    policies.set_policy_clock(previous)
    policies.clear_policy_cache()


@pytest.fixture
def written() -> Iterator[list[tuple[type[Block], str]]]:
    """Documents to delete after the test (component specs first: they reference the others)."""
    docs: list[tuple[type[Block], str]] = []
    yield docs
    for kind, name in sorted(docs, key=lambda d: d[0] is not ComponentSpec):
        try:
            kind.delete(name)
        except (ValueError, ObjectNotFound):
            pass
    policies.clear_policy_cache()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def save(block: Block, name: str, written: list[tuple[type[Block], str]]) -> None:
    block.save(name, overwrite=True)
    written.append((type(block), name))


def bypass_validation(slug: str, name: str, **changes: Any) -> None:
    """Edit a document through the API, which stores data without checking the schema."""
    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(name, slug)
        client.update_block_document(doc.id, BlockDocumentUpdate(data={**doc.data, **changes}))


# --- blocks --------------------------------------------------------------------------------


def test_round_trip_of_every_block(written: list[tuple[type[Block], str]]) -> None:
    name = unique()
    breaker = CircuitBreakerPolicy(
        failure_threshold=7, failure_rate_threshold=40, minimum_calls=20, open_seconds=12.5,
        max_open_seconds=90, on_open="wait", store_url="memory://",
    )  # fmt: skip
    bulkhead = BulkheadPolicy(max_concurrent=3, max_wait_seconds=2.5, scope="shared")
    recovery = RecoveryPolicy(action="model-reload", max_attempts=4, jitter="decorrelated")
    for block in (breaker, bulkhead, recovery):
        save(block, name, written)
    spec = ComponentSpec(
        component=name,
        breaker=CircuitBreakerPolicy.load(name),
        bulkhead=BulkheadPolicy.load(name),
        recovery=RecoveryPolicy.load(name),
        control_endpoint="http://127.0.0.1:8000/control",
        depends_on=["doc-processing"],
    )
    save(spec, name, written)

    for block in (breaker, bulkhead, recovery, spec):
        loaded = type(block).load(name)
        assert loaded.model_dump() == block.model_dump()
    loaded_spec = ComponentSpec.load(name)
    assert loaded_spec.breaker.open_seconds == 12.5
    assert isinstance(loaded_spec.bulkhead, BulkheadPolicy)
    assert loaded_spec.bulkhead.max_concurrent == 3


def test_to_config_composes_the_trip_conditions() -> None:
    plain = CircuitBreakerPolicy(failure_threshold=4, open_seconds=15)
    assert plain.to_config("qv") == BreakerConfig(
        name="qv", trip=ConsecutiveFailures(4), open_seconds=15.0
    )
    full = CircuitBreakerPolicy(
        failure_threshold=6, failure_rate_threshold=50, slow_call_rate_threshold=80,
        slow_call_seconds=2.5, minimum_calls=20, window_type="time", window_size=60,
        open_seconds=10, open_multiplier=3, max_open_seconds=120, open_jitter=0.2,
        half_open_calls=2, probe_ttl_seconds=7, recovery_seconds=30, recovery_min_fraction=0.25,
        recovery_aggression=2, recovery_failure_rate=20,
    )  # fmt: skip
    cfg = full.to_config("ml")
    assert cfg.trip == AnyOf(
        (AnyOf((ConsecutiveFailures(6), FailureRate(50, 20))), SlowCallRate(80, 2.5, 20))
    )
    assert cfg.slow_call_seconds == 2.5
    assert (cfg.window_type, cfg.window_size, cfg.open_multiplier, cfg.open_cap_seconds) == (
        "time", 60, 3.0, 120.0,
    )  # fmt: skip
    assert (cfg.half_open_calls, cfg.probe_ttl_seconds, cfg.open_jitter) == (2, 7.0, 0.2)
    assert (cfg.recovery_seconds, cfg.recovery_min_fraction, cfg.recovery_aggression) == (
        30.0, 0.25, 2.0,
    )  # fmt: skip
    assert cfg.recovery_failure_rate == 20.0

    bulkhead = BulkheadPolicy(max_concurrent=2, max_queue=5, scope="shared").to_config("ml")
    assert (bulkhead.name, bulkhead.max_concurrent, bulkhead.max_queue, bulkhead.scope) == (
        "ml", 2, 5, "shared",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        (CircuitBreakerPolicy, {"failure_threshold": 0}, "failure_threshold"),
        (CircuitBreakerPolicy, {"failure_rate_threshold": 101}, "failure_rate_threshold"),
        (CircuitBreakerPolicy, {"open_seconds": 0}, "open_seconds"),
        (CircuitBreakerPolicy, {"open_multiplier": 0.5}, "open_multiplier"),
        (CircuitBreakerPolicy, {"open_jitter": 1.0}, "open_jitter"),
        (CircuitBreakerPolicy, {"half_open_calls": 0}, "half_open_calls"),
        (CircuitBreakerPolicy, {"recovery_min_fraction": 0}, "recovery_min_fraction"),
        (CircuitBreakerPolicy, {"window_type": "sliding"}, "window_type"),
        (CircuitBreakerPolicy, {"on_open": "retry"}, "on_open"),
        (CircuitBreakerPolicy, {"open_seconds": 30, "max_open_seconds": 10}, "max_open_seconds"),
        (CircuitBreakerPolicy, {"slow_call_rate_threshold": 50}, "slow_call_seconds"),
        (
            CircuitBreakerPolicy,
            {"failure_rate_threshold": 50, "minimum_calls": 50, "window_size": 20},
            "minimum_calls",
        ),
        (BulkheadPolicy, {"max_concurrent": 0}, "max_concurrent"),
        (BulkheadPolicy, {"scope": "global"}, "scope"),
        (BulkheadPolicy, {"max_queue": -1}, "max_queue"),
        (RecoveryPolicy, {"action": "reboot"}, "action"),
        (RecoveryPolicy, {"base_seconds": 10, "cap_seconds": 5}, "cap_seconds"),
    ],
)
def test_bounds_refuse_bad_values_naming_the_field(
    kind: type[Block], values: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        kind(**values)
    assert field in str(info.value)


def test_fields_have_titles_and_descriptions_ending_with_a_period() -> None:
    for kind in BLOCK_TYPES.values():
        assert kind.get_description(), kind
        example = kind.get_code_example() or ""
        assert f"from prefect_ft.blocks import {kind.__name__}" in example
        assert f'{kind.__name__}.load("BLOCK_NAME")' in example
        for name, info in kind.model_fields.items():
            assert info.title, (kind, name)
            assert info.description and info.description.endswith("."), (kind, name)


def test_block_register_cli_registers_the_types() -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    prefect = Path(sys.executable).with_name("prefect")
    done = subprocess.run(
        [str(prefect), "block", "register", "-m", "prefect_ft.blocks"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        for slug in BLOCK_TYPES:
            assert client.read_block_type_by_slug(slug).slug == slug


# --- resolve_policy ------------------------------------------------------------------------


def test_block_beats_preset_and_preset_is_used_without_a_block(
    clock: FakeClock, written: list[tuple[type[Block], str]]
) -> None:
    preset = resolve_policy("quality-validation", ttl=0)
    assert preset == FTPolicy(
        "quality-validation",
        preset_config("quality-validation"),
        source="preset:quality-validation",
    )
    save(CircuitBreakerPolicy(failure_threshold=11, on_open="wait"), "quality-validation", written)
    from_block = resolve_policy("quality-validation", ttl=0)
    assert from_block.breaker.trip == ConsecutiveFailures(11)
    assert from_block.on_open == "wait"
    assert from_block.source == "block:ft-circuit-breaker-policy/quality-validation"


def test_unknown_name_names_what_was_tried(clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_policy("no-such-component")
    message = str(info.value)
    assert "no ComponentSpec or CircuitBreakerPolicy block named 'no-such-component'" in message
    assert "no preset 'no-such-component'" in message
    assert "presets: doc-processing, ipc, ml-inference, quality-validation" in message


def test_objects_resolve_without_a_lookup(written: list[tuple[type[Block], str]]) -> None:
    policy = FTPolicy("x", BreakerConfig("x"))
    assert resolve_policy(policy) is policy
    name = unique()
    save(CircuitBreakerPolicy(failure_threshold=2), name, written)
    loaded = resolve_policy(CircuitBreakerPolicy.load(name))
    assert (loaded.name, loaded.breaker.trip) == (name, ConsecutiveFailures(2))
    with pytest.raises(ConfigurationError, match="unsaved CircuitBreakerPolicy"):
        resolve_policy(CircuitBreakerPolicy())


def test_hot_reload_after_the_ttl(clock: FakeClock, written: list[tuple[type[Block], str]]) -> None:
    name = unique()
    save(CircuitBreakerPolicy(failure_threshold=3, open_seconds=20), name, written)
    first = resolve_policy(name, ttl=10)
    assert first.breaker.trip == ConsecutiveFailures(3)
    clock.now += 11  # re-read, unchanged: the very same object (callers key gates on it)
    assert resolve_policy(name, ttl=10) is first

    save(CircuitBreakerPolicy(failure_threshold=6, open_seconds=40), name, written)
    clock.now += 9.9
    assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(3)
    clock.now += 0.2
    policy = resolve_policy(name, ttl=10)
    assert (policy.breaker.trip, policy.breaker.open_seconds) == (ConsecutiveFailures(6), 40.0)


async def test_async_twin_shares_the_cache(
    clock: FakeClock, written: list[tuple[type[Block], str]]
) -> None:
    name = unique()
    await CircuitBreakerPolicy(failure_threshold=4).asave(name)
    written.append((CircuitBreakerPolicy, name))
    assert (await aresolve_policy(name, ttl=5)).breaker.trip == ConsecutiveFailures(4)
    await CircuitBreakerPolicy(failure_threshold=8).asave(name, overwrite=True)
    assert (await aresolve_policy(name, ttl=5)).breaker.trip == ConsecutiveFailures(4)
    clock.now += 6
    assert (await aresolve_policy(name, ttl=5)).breaker.trip == ConsecutiveFailures(8)


def test_invalid_edit_keeps_the_last_valid_policy(
    clock: FakeClock, written: list[tuple[type[Block], str]], caplog: pytest.LogCaptureFixture
) -> None:
    name = unique()
    save(CircuitBreakerPolicy(failure_threshold=5), name, written)
    assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(5)

    bypass_validation("ft-circuit-breaker-policy", name, failure_threshold=-3)
    clock.now += 11
    with caplog.at_level(logging.WARNING, logger="prefect_ft.policies"):
        kept = resolve_policy(name, ttl=10)
    assert kept.breaker.trip == ConsecutiveFailures(5)
    assert f"ft-circuit-breaker-policy/{name} is invalid: failure_threshold" in caplog.text

    bypass_validation("ft-circuit-breaker-policy", name, failure_threshold=9)
    clock.now += 5  # the failed read is retried one TTL later, not sooner
    assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(5)
    clock.now += 6
    assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(9)


def test_invalid_document_never_valid_raises(
    clock: FakeClock, written: list[tuple[type[Block], str]]
) -> None:
    name = unique()
    save(CircuitBreakerPolicy(), name, written)
    bypass_validation("ft-circuit-breaker-policy", name, open_seconds=0)
    with pytest.raises(ConfigurationError, match=rf"{name} is invalid: open_seconds"):
        resolve_policy(name)


def test_unreachable_api_keeps_the_last_valid_policy(
    clock: FakeClock, written: list[tuple[type[Block], str]], caplog: pytest.LogCaptureFixture
) -> None:
    name = unique()
    save(CircuitBreakerPolicy(failure_threshold=2), name, written)
    assert resolve_policy(name, ttl=1).breaker.trip == ConsecutiveFailures(2)
    clock.now += 2
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with caplog.at_level(logging.WARNING, logger="prefect_ft.policies"):
            assert resolve_policy(name, ttl=1).breaker.trip == ConsecutiveFailures(2)
        assert "cannot read block document" in caplog.text
        with pytest.raises(ConfigurationError, match="cannot resolve policy"):
            resolve_policy(unique(), ttl=1)


def test_component_spec_gives_breaker_and_bulkhead_and_follows_its_references(
    clock: FakeClock, written: list[tuple[type[Block], str]]
) -> None:
    name = unique("comp")
    save(CircuitBreakerPolicy(failure_threshold=3), name, written)
    save(BulkheadPolicy(max_concurrent=2), name, written)
    spec = ComponentSpec(
        component=name, breaker=CircuitBreakerPolicy.load(name), bulkhead=BulkheadPolicy.load(name)
    )
    save(spec, name, written)
    policy = resolve_policy(name, ttl=10)
    assert (policy.name, policy.source) == (name, f"block:ft-component-spec/{name}")
    assert policy.breaker.trip == ConsecutiveFailures(3)
    assert policy.bulkhead is not None and policy.bulkhead.max_concurrent == 2

    save(CircuitBreakerPolicy(failure_threshold=12), name, written)  # edit the referenced block
    clock.now += 10
    assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(12)


# --- prefect-ft blocks apply ---------------------------------------------------------------


def _apply(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = app(["blocks", "apply", "--path", str(path)], result_action="return_value")
    out, err = capsys.readouterr()
    return code, out, err


def _docs_under(path: Path) -> list[tuple[type[Block], str]]:
    return [(BLOCK_TYPES[f.parent.name], f.stem) for f in sorted(path.glob("*/*.yaml"))]


def _exists(kind: type[Block], name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_block_document_by_name(name, kind.get_block_type_slug())
        except ObjectNotFound:
            return False
    return True


def test_apply_is_idempotent_and_updates_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: list[tuple[type[Block], str]]
) -> None:
    docs = tmp_path / "blocks"
    shutil.copytree(REPO / "blocks", docs)
    written.extend(_docs_under(docs))

    code, out, err = _apply(docs, capsys)
    assert (code, err) == (0, ""), out
    assert out.count(": created") + out.count(": updated") == 16, out

    code, out, _ = _apply(docs, capsys)
    assert code == 0 and out.count(": unchanged") == 16, out
    assert "16 documents: 0 written, 16 unchanged" in out

    ipc = docs / "ft-circuit-breaker-policy" / "ipc.yaml"
    ipc.write_text(ipc.read_text().replace("failure_threshold: 8", "failure_threshold: 9"))
    code, out, _ = _apply(docs, capsys)
    assert code == 0 and "ft-circuit-breaker-policy/ipc: updated" in out, out
    assert out.count(": unchanged") == 15, out
    assert CircuitBreakerPolicy.load("ipc").failure_threshold == 9
    spec = ComponentSpec.load("ipc")  # the spec references the breaker document
    assert spec.breaker.failure_threshold == 9

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("prefect-ft")), "blocks", "apply", "--path", str(docs)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": unchanged") == 16, done.stdout


def _prefixed_copy(src: Path, dst: Path, prefix: str) -> None:
    """The repository's documents under new names, references renamed too."""
    for f in src.glob("*/*.yaml"):
        target = dst / f.parent.name / f"{prefix}-{f.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = f.read_text()
        if f.parent.name == "ft-component-spec":
            for field in ("breaker", "bulkhead", "recovery"):
                text = text.replace(f"{field}: {f.stem}", f"{field}: {prefix}-{f.stem}")
        target.write_text(text)


@pytest.mark.parametrize(
    ("bad_text", "expected"),
    [
        ("failure_threshold: 0\n", "failure_threshold: Input should be greater than or equal to 1"),
        ("failure_threshold: [oops\n", "invalid YAML at line"),
        ("failure_treshold: 3\n", "unknown field 'failure_treshold'"),
        ("open_seconds: 30\nmax_open_seconds: 5\n", "max_open_seconds (5.0) must be >="),
    ],
)
def test_apply_refuses_bad_input_and_applies_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    written: list[tuple[type[Block], str]],
    bad_text: str,
    expected: str,
) -> None:
    prefix = unique("bad")
    _prefixed_copy(REPO / "blocks", tmp_path, prefix)
    bad = tmp_path / "ft-circuit-breaker-policy" / f"{prefix}-zz.yaml"  # sorts after the good
    bad.write_text(bad_text)
    written.extend(_docs_under(tmp_path))

    code, out, err = _apply(tmp_path, capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(bad) in err and expected in err and "nothing applied" in err, err
    assert not any(_exists(kind, name) for kind, name in _docs_under(tmp_path))


def test_apply_refuses_a_dangling_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "ft-component-spec" / "lonely.yaml"
    spec.parent.mkdir()
    spec.write_text("component: lonely\nbreaker: not-there\n")
    code, _, err = _apply(tmp_path, capsys)
    assert code == 1
    assert "breaker: no ft-circuit-breaker-policy document named 'not-there'" in err


# --- resolution keeps the last valid policy, whatever failed (issue 8 item 8) --------------


def test_a_store_url_that_cannot_be_built_keeps_the_last_valid_policy(
    clock: FakeClock, written: list[tuple[type[Block], str]], caplog: pytest.LogCaptureFixture
) -> None:
    name = unique()
    save(CircuitBreakerPolicy(failure_threshold=2, store_url="memory://"), name, written)
    assert resolve_policy(name, ttl=10).store_url == "memory://"
    # saved from the UI before the schema checked it, or written straight through the API
    bypass_validation("ft-circuit-breaker-policy", name, store_url="redis://cache:99999/0")
    clock.now += 11
    with caplog.at_level(logging.WARNING, logger="prefect_ft.policies"):
        kept = resolve_policy(name, ttl=10)
    assert (kept.store_url, kept.breaker.trip) == ("memory://", ConsecutiveFailures(2))
    assert f"{name} is invalid: store_url" in caplog.text and "port" in caplog.text


def test_a_deleted_document_without_a_preset_keeps_the_last_valid_policy(
    clock: FakeClock, written: list[tuple[type[Block], str]], caplog: pytest.LogCaptureFixture
) -> None:
    name = unique()
    save(CircuitBreakerPolicy(failure_threshold=4), name, written)
    assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(4)
    CircuitBreakerPolicy.delete(name)
    clock.now += 11
    with caplog.at_level(logging.WARNING, logger="prefect_ft.policies"):
        assert resolve_policy(name, ttl=10).breaker.trip == ConsecutiveFailures(4)
    assert f"no ComponentSpec or CircuitBreakerPolicy block named {name!r}" in caplog.text
    assert "keeping the last valid policy" in caplog.text
