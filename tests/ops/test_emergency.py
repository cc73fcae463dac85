"""Emergency stop and clear on the store: every breaker forced open, then exactly restored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefect_ft import CircuitBreaker, CircuitOpenError
from prefect_ft.ops import emergency
from prefect_ft.ops.emergency import EmergencyError


class FakeControls:
    """Records what a stop pauses and a clear resumes (the Prefect half is tested elsewhere)."""

    def __init__(self) -> None:
        self.paused: list[Any] = []
        self.resumed: list[Any] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def pause(self, patterns: Any) -> dict[str, list[dict[str, str]]]:
        self.paused.append(list(patterns))
        return {"deployments": [{"id": "d1", "name": "pipe/main"}], "automations": []}

    def resume(self, paused: dict[str, list[dict[str, str]]]) -> list[str]:
        self.resumed.append(paused)
        return []

    def announce(self, event: str, payload: dict[str, Any]) -> None:
        self.events.append((event, payload))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ft.db'}"


def _b(name: str, url: str) -> CircuitBreaker:
    return CircuitBreaker(name, store=url, refresh_seconds=None)


def test_stop_forces_every_breaker_open_and_clear_restores_each_overlay(url: str) -> None:
    plain, by_hand, disabled = _b("ipc", url), _b("model", url), _b("quality", url)
    by_hand.force_open()
    disabled.disable()
    controls = FakeControls()
    out = emergency.stop("model server on fire", store=url, controls=controls)
    assert set(out.breakers) == {"ipc", "model", "quality"} and not out.errors
    for b in (plain, by_hand, disabled):
        b.refresh()
        assert b.state == "FORCED_OPEN"
    with pytest.raises(CircuitOpenError):
        plain.call(lambda: 1)
    active, _ = emergency.current(url)
    assert active is not None and active["reason"] == "model server on fire"
    assert active["breakers"] == {"ipc": None, "model": "FORCED_OPEN", "quality": "DISABLED"}
    assert {"user", "host", "pid"} <= set(active["by"]) and active["complete"]
    assert controls.events[0][0] == "prefect-ft.emergency.shutdown"

    emergency.clear(store=url, controls=controls)
    for b in (plain, by_hand, disabled):
        b.refresh()
    assert (plain.state, by_hand.state, disabled.state) == ("CLOSED", "FORCED_OPEN", "DISABLED")
    assert controls.resumed == [active["paused"]]
    assert controls.events[1][0] == "prefect-ft.emergency.cleared"
    assert emergency.current(url)[0] is None


def test_a_change_made_during_the_stop_is_kept_by_clear(url: str) -> None:
    b = _b("ipc", url)
    emergency.stop("drill", store=url)
    b.refresh()
    b.disable()  # an operator's decision during the stop
    out = emergency.clear(store=url)
    b.refresh()
    assert b.state == "DISABLED" and "changed during the stop" in out.breakers["ipc"]


def test_a_second_stop_is_refused_with_who_and_when(url: str) -> None:
    _b("ipc", url)
    emergency.stop("first", store=url, who={"user": "alice", "host": "ops-1", "pid": 1})
    before = emergency.current(url)
    with pytest.raises(EmergencyError, match=r"already active, by alice@ops-1 at .*first"):
        emergency.stop("second", store=url)
    assert emergency.current(url) == before  # nothing changed, not even the version


def test_clear_without_a_stop_changes_nothing(url: str) -> None:
    b = _b("ipc", url)
    b.force_open()
    with pytest.raises(EmergencyError, match="no emergency stop is active; nothing changed"):
        emergency.clear(store=url)
    b.refresh()
    assert b.state == "FORCED_OPEN" and emergency.current(url) == (None, 0)


def test_an_empty_reason_is_refused(url: str) -> None:
    with pytest.raises(EmergencyError, match="--reason must say why"):
        emergency.stop("  ", store=url)
    assert emergency.current(url) == (None, 0)


def test_a_stop_then_clear_then_stop_again_works(url: str) -> None:
    b = _b("ipc", url)
    emergency.stop("one", store=url)
    emergency.clear(store=url)
    emergency.stop("two", store=url)
    b.refresh()
    assert b.state == "FORCED_OPEN" and emergency.current(url)[0]["reason"] == "two"


def test_an_unreadable_emergency_record_does_not_block_a_stop(url: str) -> None:
    from prefect_ft.stores import shared_store

    b = _b("ipc", url)
    shared_store(url).cas(emergency.EMERGENCY_KEY, 0, "{torn")
    with pytest.raises(EmergencyError, match="no emergency stop is active"):
        emergency.clear(store=url)
    emergency.stop("after a torn write", store=url)
    b.refresh()
    assert b.state == "FORCED_OPEN"


def test_clear_waits_for_a_stop_still_being_applied_unless_forced(url: str) -> None:
    import json

    from prefect_ft.stores import shared_store

    b = _b("ipc", url)
    store = shared_store(url)
    half = {"active": True, "id": "x", "by": {"user": "bob", "host": "h"}, "at_iso": "then",
            "reason": "died", "breakers": {"ipc": None}, "complete": False}  # fmt: skip
    store.cas(emergency.EMERGENCY_KEY, 0, json.dumps(half))
    b.force_open()
    with pytest.raises(EmergencyError, match=r"by bob@h at then .* is still being applied"):
        emergency.clear(store=url)
    b.refresh()
    assert b.state == "FORCED_OPEN"
    emergency.clear(store=url, force=True)
    b.refresh()
    assert b.state == "CLOSED" and emergency.current(url)[0] is None


def test_a_breaker_built_during_the_stop_is_forced_open_and_released_by_clear(url: str) -> None:
    _b("ipc", url)
    emergency.stop("drill", store=url)
    late = _b("model", url)  # first built after the stop: not in the index the stop read
    assert late.state == "FORCED_OPEN"
    with pytest.raises(CircuitOpenError):
        late.call(lambda: 1)
    active, _ = emergency.current(url)
    assert active is not None and active["breakers"] == {"ipc": None, "model": None}
    out = emergency.clear(store=url)
    late.refresh()
    assert late.state == "CLOSED" and set(out.breakers) == {"ipc", "model"}


def test_a_breaker_already_known_is_not_forced_again_when_built_during_the_stop(url: str) -> None:
    _b("ipc", url).disable()
    emergency.stop("drill", store=url)
    emergency.clear(store=url)
    again = _b("ipc", url)  # known to the index: a new object in a new process changes nothing
    assert again.state == "DISABLED"


class _JoinDuringStop:
    """A store that builds a new breaker right after the stop's claim is written: the join and
    the stop's own writes then race for the emergency record."""

    def __init__(self, store: Any, url: str) -> None:
        self._store, self._url, self.joined = store, url, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def cas(self, key: str, version: int, data: str) -> Any:
        out = self._store.cas(key, version, data)
        if key == emergency.EMERGENCY_KEY and not self.joined and '"complete": false' in data:
            self.joined = True
            CircuitBreaker("late", store=self._store, refresh_seconds=None)
        return out


def test_a_breaker_joining_while_the_stop_is_applied_does_not_break_the_stop(url: str) -> None:
    from prefect_ft.stores import shared_store

    _b("ipc", url)
    store = _JoinDuringStop(shared_store(url), url)
    out = emergency.stop("drill", store=store)
    assert store.joined and not out.errors
    active, _ = emergency.current(url)
    assert active is not None and active["complete"]
    assert set(active["breakers"]) == {"ipc", "late"}
    emergency.clear(store=url)
    assert _b("late", url).state == "CLOSED"


def test_the_cli_prints_a_refusal_as_one_line_and_status_1(url: str, capsys: Any) -> None:
    from prefect_ft.cli.emergency import emergency_clear, emergency_stop

    assert emergency_clear(store=url, store_only=True) == 1
    assert capsys.readouterr().err == (
        "prefect-ft: error: no emergency stop is active; nothing changed\n"
    )
    assert emergency_stop(reason="drill", store=url, store_only=True) == 0
    assert emergency_stop(reason="again", store=url, store_only=True) == 1
    err = capsys.readouterr().err
    assert err.startswith("prefect-ft: error: an emergency stop is already active, by ")
    assert err.count("\n") == 1
    bad = "redis://127.0.0.1:1/0"  # nothing listens there: unreachable, one line
    assert emergency_stop(reason="x", store=bad, store_only=True) == 1
    err = capsys.readouterr().err
    assert err.endswith("; nothing changed\n") and err.count("\n") == 1


def test_a_breaker_forgotten_during_the_stop_stays_forgotten_after_clear(url: str) -> None:
    from prefect_ft.cli.breakers import forget
    from prefect_ft.stores import shared_store
    from prefect_ft.stores.index import known_breakers

    _b("ipc", url)
    retired = _b("retired", url)
    emergency.stop("drill", store=url)
    assert forget("retired", store=url) == 0
    out = emergency.clear(store=url)
    store = shared_store(url)
    assert "retired" not in known_breakers(store), "clear listed the forgotten breaker again"
    assert not store.read(retired.key).data, "clear wrote the forgotten breaker's record again"
    assert out.breakers["retired"] == "forgotten during the stop"
    assert _b("ipc", url).state == "CLOSED"
