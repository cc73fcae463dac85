"""Isolation decisions on a fake clock: the graph, deferral along it, the panic threshold."""

from __future__ import annotations

import pytest

from prefect_ft.core.isolation import (
    Defer,
    DependencyGraph,
    Go,
    Spill,
    defer,
    panic,
    recovery_target,
)

# the RAN pipeline's shape: doc -> ml -> ipc -> qv (each depends on the one before)
PIPE = {"doc": [], "ml": ["doc"], "ipc": ["ml"], "qv": ["ipc"]}


def test_upstream_and_dependents_are_transitive() -> None:
    g = DependencyGraph.build(PIPE)
    assert g.upstream("qv") == ("ipc", "ml", "doc")
    assert g.upstream("doc") == ()
    assert g.dependents("ml") == ("ipc", "qv")


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "dependency cycle: a -> b -> a"),
        ({"a": ["a"]}, "dependency cycle: a -> a"),
        ({"a": [], "b": ["c"], "c": ["d"], "d": ["b"]}, "dependency cycle: b -> c -> d -> b"),
        ({"a": ["ghost"]}, "a depends on unknown component 'ghost'"),
        ({"": []}, "must not be empty"),
    ],
)
def test_bad_graphs_are_refused_with_a_one_line_reason(edges: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        DependencyGraph.build(edges)
    assert "\n" not in str(info.value)


def upstream_waits(g: DependencyGraph, component: str, open_for: dict[str, float | None]):
    return {up: open_for.get(up, 0.0) for up in g.upstream(component)}


def test_deferral_along_the_graph_then_dead_letter_at_the_bound() -> None:
    g = DependencyGraph.build(PIPE)
    waits = upstream_waits(g, "qv", {"doc": 60.0})  # the root is open: everything downstream waits
    assert isinstance(defer(upstream_waits(g, "doc", {"doc": 60.0}), 0, 0, 5), Go)
    t, decisions = 0.0, []
    while True:
        d = defer({k: (v - t if v else v) for k, v in waits.items()}, t, 0.0, 5.0, waiting=t > 0)
        decisions.append(d)
        if not isinstance(d, Defer):
            break
        assert d.blocked_by == ("doc",) and t < d.until <= 5.0
        t = d.until
    assert isinstance(decisions[-1], Spill) and decisions[-1].reason == "upstream-open"
    assert t == 5.0 and "still open after 5 s" in decisions[-1].detail


def test_an_upstream_closing_within_the_bound_lets_the_call_go() -> None:
    d = defer({"ml": 1.5, "doc": 0.0}, now=10.0, arrived_at=10.0, defer_seconds=5.0)
    assert isinstance(d, Defer) and d.until == pytest.approx(10.25)
    d = defer({"ml": 0.1}, now=11.4, arrived_at=10.0, defer_seconds=5.0, waiting=True)
    assert isinstance(d, Defer) and d.until == pytest.approx(11.5)
    assert isinstance(defer({"ml": 0.0}, now=11.5, arrived_at=10.0, defer_seconds=5.0), Go)


def test_an_operator_held_upstream_spills_at_once() -> None:
    d = defer({"ml": None}, now=0.0, arrived_at=0.0, defer_seconds=30.0)
    assert isinstance(d, Spill) and "operator" in d.detail


def test_the_defer_buffer_is_bounded_and_spills_when_full() -> None:
    full = defer({"ml": 3.0}, 0.0, 0.0, 5.0, deferred=4, capacity=4)
    assert isinstance(full, Spill) and "4 calls already deferred" in full.detail
    # a call already holding its place keeps it
    assert isinstance(
        defer({"ml": 3.0}, 1.0, 0.0, 5.0, deferred=4, capacity=4, waiting=True), Defer
    )
    assert isinstance(defer({"ml": 3.0}, 0.0, 0.0, 5.0, deferred=3, capacity=4), Defer)


def test_panic_threshold_is_half_the_group() -> None:
    assert not panic({"a": "OPEN", "b": "CLOSED", "c": "CLOSED"})
    assert panic({"a": "OPEN", "b": "HALF_OPEN", "c": "CLOSED", "d": "RECOVERY"})
    assert panic({"a": "FORCED_OPEN", "b": "CLOSED"})
    assert not panic({"a": "RECOVERY", "b": "DISABLED"})
    assert not panic({})
    assert panic({"a": True, "b": False, "c": False}, threshold=0.3)
    with pytest.raises(ValueError, match="threshold"):
        panic({"a": "OPEN"}, threshold=0)


def test_one_outage_one_recovery_the_most_upstream_open_component() -> None:
    g = DependencyGraph.build(PIPE)
    states = {"doc": "CLOSED", "ml": "OPEN", "ipc": "OPEN", "qv": "OPEN"}
    assert panic(states) and recovery_target(states, g) == "ml"
    assert recovery_target({c: "CLOSED" for c in PIPE}, g) is None
    wide = DependencyGraph.build({"a": [], "b": [], "c": ["b"], "d": ["b"]})
    # two independent roots are open: the one more components depend on goes first
    assert recovery_target({"a": "OPEN", "b": "OPEN", "c": "OPEN", "d": "OPEN"}, wide) == "b"


def test_component_spec_and_policy_refuse_bad_dependencies_at_the_edge() -> None:
    from dataclasses import replace

    from pydantic import ValidationError

    from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec
    from prefect_ft.exceptions import ConfigurationError
    from prefect_ft.presets import preset_config
    from prefect_ft.tasks.isolation import component_graph
    from prefect_ft.tasks.policies import FTPolicy

    with pytest.raises(ValidationError, match="dependency cycle: a -> a"):
        ComponentSpec(component="a", breaker=CircuitBreakerPolicy(), depends_on=["a"])
    with pytest.raises(ValidationError, match="defer_seconds"):
        ComponentSpec(component="a", breaker=CircuitBreakerPolicy(), defer_seconds=-1)
    base = FTPolicy("a", preset_config("ipc"))
    with pytest.raises(ConfigurationError, match="defer_seconds"):
        replace(base, defer_seconds=float("inf"))
    with pytest.raises(ConfigurationError, match="max_deferred"):
        replace(base, max_deferred=-1)
    a, b = replace(base, depends_on=("b",)), replace(base, name="b", depends_on=("a",))
    with pytest.raises(ConfigurationError, match="dependency cycle: a -> b -> a"):
        component_graph([a, b])


def test_a_group_outage_is_owned_by_one_component() -> None:
    from prefect_ft.core.isolation import outage_owner

    g = DependencyGraph.build({**PIPE, "lone": []})
    assert g.group("qv") == ("doc", "ipc", "ml", "qv") and g.group("lone") == ("lone",)
    states = {"doc": "CLOSED", "ml": "OPEN", "ipc": "OPEN", "qv": "OPEN"}
    # three breaker.opened events, one recovery: every one of them names ml
    assert {outage_owner(c, states, g) for c in ("ml", "ipc", "qv")} == {"ml"}
    calm = {"doc": "CLOSED", "ml": "CLOSED", "ipc": "OPEN", "qv": "CLOSED"}
    assert outage_owner("ipc", calm, g) == "ipc"  # below the threshold: recover it alone


def test_the_recovery_owner_reads_breaker_states_from_the_store() -> None:
    import json

    from prefect_ft.core.states import BreakerRecord
    from prefect_ft.stores import InMemoryBreakerStore
    from prefect_ft.tasks.isolation import breaker_states, recovery_owner

    store = InMemoryBreakerStore()
    for name in ("ml", "ipc", "qv"):
        store.cas(
            f"prefect-ft:breaker:{name}", 0, json.dumps(BreakerRecord(state="OPEN").to_dict())
        )
    g = DependencyGraph.build(PIPE)
    assert breaker_states(g.group("qv"), store) == {
        "doc": "CLOSED", "ipc": "OPEN", "ml": "OPEN", "qv": "OPEN"
    }  # fmt: skip
    assert recovery_owner("qv", g, store) == "ml"
    assert recovery_owner("doc", g, store) == "ml"
