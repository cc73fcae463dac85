"""The dead-letter queue without Prefect: signing keys, retention, the low-water mark, the CLI."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from prefect_ft.deadletter.queue import DeadLetterQueue, encode_inputs
from prefect_ft.stores import InMemoryBreakerStore

KEY = "test-key-0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY", KEY)
    monkeypatch.delenv("PREFECT_FT_DEADLETTER_KEY_BLOCK", raising=False)


def put(queue: DeadLetterQueue, x: int, **extra: Any) -> Any:
    encoding, payload = encode_inputs((x,), {})
    return queue.put(
        task_name="f",
        task_path="m:f",
        component=queue.breaker,
        policy="ipc",
        parameters={"x": x},
        reason="test",
        encoding=encoding,
        payload=payload,
        **extra,
    )


def finish(queue: DeadLetterQueue, seq: int, status: str = "done") -> None:
    claimed = queue.claim(queue.get(seq), "me", 10)
    assert claimed is not None
    if status == "done":
        assert queue.complete(claimed, "ok")
    else:
        assert queue.fail(claimed, "boom", max_attempts=1)


# -- item 15: the signing key ------------------------------------------------------------------
def test_key_from_the_environment_signs_and_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect_ft.deadletter import signing

    queue = DeadLetterQueue("signed", InMemoryBreakerStore())
    item = put(queue, 1)
    assert item.signature and signing.verify(queue.get(1))
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY", "another-key-0123456789abcdef01234")
    assert not signing.verify(queue.get(1))  # signed with another key
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_KEY", "short")
    with pytest.raises(ValueError, match=r"PREFECT_FT_DEADLETTER_KEY.*at least 16"):
        signing.current_key()


def test_without_a_key_one_is_generated_once_in_a_0600_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_ft.deadletter import signing

    monkeypatch.delenv("PREFECT_FT_DEADLETTER_KEY")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    key = signing.current_key()
    path = tmp_path / "home" / "prefect-ft-deadletter.key"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32 and signing.current_key() == key
    code = "from prefect_ft.deadletter import signing; print(signing.current_key().hex())"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_FT_DEADLETTER_KEY"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert other.stdout.strip() == key.hex(), other.stderr  # another process: the same key
    path.chmod(0o644)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    signing._file_keys.clear()
    with pytest.raises(ValueError, match="readable by others"):
        signing.current_key()


def test_a_tampered_item_never_unpickles(tmp_path: Path) -> None:
    from prefect_ft.deadletter import signing

    queue = DeadLetterQueue("tamper", InMemoryBreakerStore())
    item = put(queue, 1)
    marker = tmp_path / "pwned"
    evil = base64.b64encode(cloudpickle.dumps(_Evil(str(marker)))).decode()
    raw = json.loads(queue.store.read("prefect-ft:dlq:tamper:1").data)
    raw.update(encoding="cloudpickle", payload=evil)
    queue.store.cas("prefect-ft:dlq:tamper:1", item.version, json.dumps(raw))
    bad = queue.get(1)
    assert not signing.verify(bad)
    with pytest.raises(signing.SignatureError, match="tamper/1"):
        bad.inputs()
    assert not marker.exists()


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


# -- item 10: the low-water mark and retention --------------------------------------------------
def test_an_in_doubt_item_does_not_hold_back_the_low_water_mark() -> None:
    clock = [0.0]
    queue = DeadLetterQueue("low", InMemoryBreakerStore(clock=lambda: clock[0]))
    put(queue, 0)
    queue.claim(queue.get(1), "dead", 1)  # its replayer died mid-run
    for x in range(1, 101):
        put(queue, x)
        finish(queue, x + 1)
    clock[0] = 5.0
    assert queue.claim(queue.get(1), "me", 10, take_over=False) is None  # parked in-doubt
    assert queue.get(1).status == "in-doubt"
    assert queue.advance_low() == 102  # past the parked item: later replays scan nothing
    before = queue.store.round_trips
    assert list(queue.items()) == []
    assert queue.store.round_trips - before <= 3
    # an operator retries it: the mark comes back for it, and goes on again once it is done
    assert queue.retry(1).status == "pending"
    assert [i.seq for i in queue.items(status="pending")] == [1]
    finish(queue, 1)
    assert queue.advance_low() == 102


def test_retention_deletes_done_and_superseded_items_only() -> None:
    clock = [0.0]
    queue = DeadLetterQueue("keep", InMemoryBreakerStore(clock=lambda: clock[0]))
    for x in range(6):
        put(queue, x)
    finish(queue, 1)
    finish(queue, 2, status="failed")
    queue.supersede(3, "task run t")
    finish(queue, 4)
    queue.advance_low()
    clock[0] = 100.0
    finish(queue, 5)  # finished recently: kept
    assert queue.expire(retention_seconds=50) == 3  # 1, 3, 4
    assert [s for s in range(1, 7) if queue.get(s) is None] == [1, 3, 4]
    assert [(i.seq, i.status) for i in queue.all_items()] == [
        (2, "failed"), (5, "done"), (6, "pending"),
    ]  # fmt: skip
    put(queue, 6)  # numbering goes on after the gaps, and scans cross them
    assert [i.seq for i in queue.items(status="pending")] == [6, 7]
    clock[0] = 200.0
    assert queue.expire(retention_seconds=50) == 1
    assert sum(k.startswith("prefect-ft:dlq:keep:") for k in queue.store._data) == 3 + 3


def test_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect_ft import settings

    assert settings.deadletter_retention_seconds() == 7 * 86400
    monkeypatch.setenv("PREFECT_FT_DEADLETTER_RETENTION_SECONDS", "-1")
    with pytest.raises(ValueError, match="PREFECT_FT_DEADLETTER_RETENTION_SECONDS"):
        settings.deadletter_retention_seconds()


# -- item 10: prefect-ft deadletters ls | retry | purge ------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from prefect_ft.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_cli_lists_retries_and_purges(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    a, b = DeadLetterQueue("alpha", url), DeadLetterQueue("beta", url)
    for x in range(3):
        put(a, x)
    put(b, 9)
    finish(a, 1)
    finish(a, 2, status="failed")
    out = cli("deadletters", "ls", "--store", url)
    assert out.returncode == 0, out.stderr
    rows = [line.split()[:2] for line in out.stdout.splitlines()[1:]]
    assert rows == [["alpha/1", "done"], ["alpha/2", "failed"], ["alpha/3", "pending"],
                    ["beta/1", "pending"]]  # fmt: skip
    out = cli("deadletters", "ls", "--store", url, "--breaker", "alpha", "--status", "failed")
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["alpha/2"]

    out = cli("deadletters", "retry", "alpha/2", "--store", url)
    assert out.returncode == 0, out.stderr
    assert a.get(2).status == "pending" and a.get(2).attempts == 0

    out = cli("deadletters", "purge", "--store", url, "--status", "done", "--older-than", "0")
    assert out.returncode == 0, out.stderr
    assert a.get(1) is None and a.get(2) is not None and "1 purged" in out.stdout

    for bad, says in [
        (("retry", "alpha/99"), "no dead letter alpha/99"),
        (("retry", "nonsense"), "ID must be BREAKER/N"),
        (("ls", "--status", "bogus"), "--status must be one of"),
        (("purge", "--older-than", "-5"), "--older-than must be"),
        (("purge", "--status", "pending"), "refusing to purge pending"),
    ]:
        out = cli("deadletters", *bad, "--store", url)
        assert out.returncode == 1 and says in out.stderr, (bad, out.stderr)
        assert "Traceback" not in out.stderr


def test_processes_racing_to_create_the_key_file_all_get_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_FT_DEADLETTER_KEY")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    code = (
        "import sys, time; from prefect_ft.deadletter import signing; "
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); "
        "print(signing.current_key().hex())"
    )
    start = str(time.time() + 1.0)  # all start creating at about the same moment
    procs = [
        subprocess.Popen([sys.executable, "-c", code, start], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and "" not in keys
    path = tmp_path / "home" / "prefect-ft-deadletter.key"
    assert path.read_text().strip().encode().hex() in keys
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
