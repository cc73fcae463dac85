"""A store that cannot be opened, or holds a corrupt record, never fails a guarded call (issue 8
item 2, DESIGN §5): the breaker runs on local state, warns once, converges once the store is
usable, and a corrupt record or database is moved aside and reported, never silently dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError, ConfigurationError
from prefect_ft.stores import BreakerStore, open_store
from prefect_ft.stores.index import INDEX_KEY, known_breakers
from tests.waiting import DEADLINE_S

KEY = "prefect-ft:breaker:dep"


def _fail() -> None:
    raise ValueError("the user's own error")


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory nobody may create files in (root ignores modes, but not a read-only sysfs)."""
    if os.geteuid() != 0:
        path = tmp_path / "ro"
        path.mkdir()
        path.chmod(0o555)
        return path
    sys_dir = Path("/sys")
    try:
        (sys_dir / "prefect-ft-probe").touch()
    except OSError:
        return sys_dir
    pytest.skip("running as root and /sys is writable: no read-only directory to test with")


def _unusable_home(kind: str, tmp_path: Path) -> Path:
    if kind == "read-only":
        return _read_only_dir(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    return blocker / "home"  # missing, and cannot be created


def _store_warnings(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and f"breaker {name}:" in r.getMessage()
    ]


@pytest.mark.parametrize("kind", ["read-only", "missing"])
def test_unusable_prefect_home_runs_on_local_state(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PREFECT_FT_STORE_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(_unusable_home(kind, tmp_path)))
    caplog.set_level(logging.WARNING)
    b = CircuitBreaker(f"home-{kind}", failure_threshold=2, refresh_seconds=None)
    assert not b.store_available
    assert b.call(lambda: 7) == 7
    for _ in range(2):
        with pytest.raises(ValueError, match="own error"):
            b.call(_fail)
    assert b.state == "OPEN"  # tripped on local state
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 7)
    b.refresh()
    assert len(_store_warnings(caplog, b.name)) == 1  # warned once, not per call


def test_store_that_becomes_usable_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _unusable_home("missing", tmp_path)
    url = f"sqlite:///{home / 'prefect-ft.db'}"
    b = CircuitBreaker("late-store", store=url, failure_threshold=2, refresh_seconds=0.05)
    assert not b.store_available
    for _ in range(2):
        with pytest.raises(ValueError):
            b.call(_fail)
    assert b.state == "OPEN"
    (tmp_path / "blocker").unlink()  # the operator fixes the directory
    home.mkdir(parents=True)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and not b.store_available:
        time.sleep(0.02)
    assert b.store_available  # the refresher retried on its own
    store = open_store(url)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and store.read(b.key).data is None:
            time.sleep(0.02)
        assert json.loads(store.read(b.key).data)["state"] == "OPEN"  # local trip published
        assert b.name in known_breakers(store)
    finally:
        store.close()


def test_corrupt_database_file_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "prefect-ft.db"
    garbage = b"this is not a database, it is a shopping list\n" * 100
    db.write_bytes(garbage)
    caplog.set_level(logging.WARNING)
    b = CircuitBreaker("corrupt-db", store=f"sqlite:///{db}", refresh_seconds=None)
    assert b.store_available
    assert b.call(lambda: 1) == 1
    moved = list(tmp_path.glob("prefect-ft.db.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage  # kept, not dropped
    assert any(str(moved[0]) in r.getMessage() for r in caplog.records)  # and reported


def _quarantined(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    pattern = re.compile(re.escape(key) + r":corrupt:[^\s,;'\"]+")
    return [m.group(0) for r in caplog.records for m in pattern.finditer(r.getMessage())]


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]"])
def test_invalid_record_is_quarantined_at_construction(
    store: BreakerStore, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert store.cas(KEY, 0, bad)[0]
    caplog.set_level(logging.WARNING)
    b = CircuitBreaker("dep", store=store, failure_threshold=2, refresh_seconds=None)
    assert b.store_available and b.state == "CLOSED"
    aside = _quarantined(caplog, KEY)
    assert aside and store.read(aside[0]).data == bad  # renamed aside, not dropped
    json.loads(store.read(KEY).data)  # the live record is valid again
    for _ in range(2):
        with pytest.raises(ValueError):
            b.call(_fail)
    assert json.loads(store.read(KEY).data)["state"] == "OPEN"


def test_invalid_record_written_later_never_replaces_the_users_error(
    store: BreakerStore, caplog: pytest.LogCaptureFixture
) -> None:
    b = CircuitBreaker("dep", store=store, failure_threshold=3, refresh_seconds=None)
    v = store.read(KEY)
    assert store.cas(KEY, v.version, "\x00garbage")[0]  # another writer corrupts it
    caplog.set_level(logging.WARNING)
    with pytest.raises(ValueError, match="own error"):  # the failure's write meets the garbage
        b.call(_fail)
    aside = _quarantined(caplog, KEY)
    assert aside and store.read(aside[0]).data == "\x00garbage"
    assert json.loads(store.read(KEY).data)["consecutive_failures"] == 1
    v = store.read(KEY)
    assert store.cas(KEY, v.version, "{")[0]
    b.refresh()  # the refresher meets it too
    assert json.loads(store.read(KEY).data)["consecutive_failures"] == 1
    assert b.store_available


def test_invalid_breaker_index_is_quarantined(
    store: BreakerStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert store.cas(INDEX_KEY, 0, "not a list")[0]
    caplog.set_level(logging.WARNING)
    CircuitBreaker("dep", store=store, refresh_seconds=None)
    aside = _quarantined(caplog, INDEX_KEY)
    assert aside and store.read(aside[0]).data == "not a list"
    assert known_breakers(store) == ["dep"]


def test_a_bad_url_scheme_is_still_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown scheme"):
        CircuitBreaker("dep", store="memroy://", refresh_seconds=None)
