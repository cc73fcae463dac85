"""Isolation decisions: defer a dependent while an upstream is open, and the group panic threshold.

Pure: the driver (`prefect_ft.tasks.isolation`) passes in each upstream breaker's
`seconds_until_admission` (0 = admits now, None = held open by an operator) and `now`.

- `DependencyGraph` comes from `ComponentSpec.depends_on`; a dependency on an unknown component
  or a cycle is refused with a one-line reason naming it (`a -> b -> a`). Dependencies are
  transitive: a call of `c` with `c -> b -> a` waits while `a` is open, since its work would be
  spent on a chain that cannot finish.
- `defer` answers for one call: `Go`, `Defer(until)` (wait, bounded by `defer_seconds` since
  the call arrived) or `Spill` (dead-letter it now with reason `upstream-open`: the bound would
  be passed, an operator holds the upstream open, or the buffer of deferred calls is full).
- `panic`: when at least `threshold` (Envoy's 50 %) of a group is out, it is one outage;
  `recovery_target` picks the one component to recover (the most upstream open one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "OUT_STATES",
    "UPSTREAM_OPEN",
    "Defer",
    "DependencyGraph",
    "Go",
    "Spill",
    "defer",
    "outage_owner",
    "panic",
    "recovery_target",
]

UPSTREAM_OPEN = "upstream-open"
# a breaker in these states does not serve its full load
OUT_STATES = frozenset({"OPEN", "HALF_OPEN", "FORCED_OPEN"})


@dataclass(frozen=True, slots=True)
class DependencyGraph:
    """Components and their direct upstreams; build it with `DependencyGraph.build`."""

    edges: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def build(cls, depends_on: Mapping[str, Iterable[str]]) -> DependencyGraph:
        """Check and freeze `{component: upstream names}`.

        Raises:
            ValueError: an empty name, an upstream that is not a component of the mapping, or a
                cycle (the message names it, e.g. `dependency cycle: a -> b -> a`).
        """
        edges = {str(c): tuple(dict.fromkeys(str(u) for u in ups)) for c, ups in depends_on.items()}
        for component, ups in edges.items():
            if not component.strip():
                raise ValueError("depends_on: a component name must not be empty")
            for up in ups:
                if up not in edges:
                    known = ", ".join(sorted(edges)) or "none"
                    raise ValueError(
                        f"depends_on: {component} depends on unknown component {up!r} (known: {known})"
                    )
        cycle = _find_cycle(edges)
        if cycle:
            raise ValueError(f"depends_on: dependency cycle: {' -> '.join(cycle)}")
        return cls(tuple(sorted(edges.items())))

    @property
    def components(self) -> tuple[str, ...]:
        """Every component, sorted."""
        return tuple(c for c, _ in self.edges)

    def direct(self, component: str) -> tuple[str, ...]:
        """`component`'s direct upstreams (empty for an unknown name)."""
        return next((ups for c, ups in self.edges if c == component), ())

    def upstream(self, component: str) -> tuple[str, ...]:
        """Every component `component` depends on, directly or not, nearest first."""
        seen: dict[str, None] = {}
        frontier = list(self.direct(component))
        while frontier:
            up = frontier.pop(0)
            if up not in seen:
                seen[up] = None
                frontier.extend(self.direct(up))
        return tuple(seen)

    def group(self, component: str) -> tuple[str, ...]:
        """The components connected to `component` by dependencies either way, sorted: the
        group whose outage counts as one (`panic`)."""
        seen, frontier = {component}, [component]
        while frontier:
            c = frontier.pop()
            near = {*self.direct(c), *(d for d, ups in self.edges if c in ups)}
            frontier.extend(near - seen)
            seen |= near
        return tuple(sorted(seen))

    def dependents(self, component: str) -> tuple[str, ...]:
        """Every component that depends on `component`, directly or not, sorted."""
        return tuple(c for c in self.components if component in self.upstream(c))


def _find_cycle(edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One cycle as a path that ends where it began, or [] (iterative DFS, three colours)."""
    colour: dict[str, int] = {}
    for root in sorted(edges):
        if colour.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(edges.get(root, ()))]
        colour[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(edges.get(nxt, ())))
    return []


@dataclass(frozen=True, slots=True)
class Go:
    """Every upstream admits calls: run."""


@dataclass(frozen=True, slots=True)
class Defer:
    """Wait until `until` and ask again; `blocked_by` are the open upstreams."""

    until: float
    blocked_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Spill:
    """Dead-letter the call with `reason` (`UPSTREAM_OPEN`); `detail` says why not wait."""

    blocked_by: tuple[str, ...]
    detail: str
    reason: str = UPSTREAM_OPEN


def defer(
    upstream_wait: Mapping[str, float | None],
    now: float,
    arrived_at: float,
    defer_seconds: float,
    *,
    deferred: int = 0,
    capacity: int = 100,
    waiting: bool = False,
    recheck_seconds: float = 0.25,
) -> Go | Defer | Spill:
    """Decide for one call of a component whose upstreams' admission waits are `upstream_wait`.

    Args:
        upstream_wait: for each (transitive) upstream, seconds until its breaker admits a call
            (0 now, None not until an operator acts).
        now: the current time; `arrived_at`: when the call first asked.
        defer_seconds: the longest a call waits for its upstreams before it is dead-lettered.
        deferred: calls of this component deferred right now (not counting this one).
        capacity: the most calls that may be deferred at once; a further one spills.
        waiting: this call already holds a place among the deferred.
        recheck_seconds: the longest sleep between two looks (an upstream may close early,
            e.g. after a recovery).
    """
    blocked = tuple(up for up, wait in upstream_wait.items() if wait is None or wait > 0)
    if not blocked:
        return Go()
    names = ", ".join(blocked)
    if any(upstream_wait[up] is None for up in blocked):
        return Spill(blocked, f"upstream {names} held open by an operator")
    deadline = arrived_at + defer_seconds
    ready = now + max(upstream_wait[up] or 0.0 for up in blocked)
    if now >= deadline:
        return Spill(blocked, f"upstream {names} still open after {defer_seconds:g} s")
    if not waiting and deferred >= capacity:
        return Spill(blocked, f"upstream {names} open and {capacity} calls already deferred")
    # waited out even when the open time runs past the bound: a recovery may half-open the
    # upstream early (`mark_recovered`), so look again every `recheck_seconds`
    return Defer(min(ready, deadline, now + recheck_seconds), blocked)


def _out(state: str | bool) -> bool:
    return state if isinstance(state, bool) else state in OUT_STATES


def panic(group_states: Mapping[str, str | bool], threshold: float = 0.5) -> bool:
    """True when at least `threshold` of the group is out (OPEN, HALF_OPEN or FORCED_OPEN).

    `group_states` maps each member to its effective breaker state (or True when out). An empty
    group never panics. 0.5 is Envoy's default healthy panic threshold.

    Raises:
        ValueError: `threshold` is not in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1] (got {threshold!r})")
    if not group_states:
        return False
    out = sum(1 for s in group_states.values() if _out(s))
    return out >= threshold * len(group_states)


def recovery_target(group_states: Mapping[str, str | bool], graph: DependencyGraph) -> str | None:
    """The one component to recover in a group outage: an out component with no out upstream
    (the likely cause), preferring the one with the most dependents, then by name."""
    out = {c for c, s in group_states.items() if _out(s)}
    roots = [c for c in out if not out.intersection(graph.upstream(c))]
    if not roots:
        return None
    return min(roots, key=lambda c: (-len(graph.dependents(c)), c))


def outage_owner(
    component: str,
    group_states: Mapping[str, str | bool],
    graph: DependencyGraph,
    threshold: float = 0.5,
) -> str:
    """The component whose recovery (and alert) answers a fault of `component`.

    Below the panic threshold that is `component` itself; at or above it the whole group is one
    outage, and every member's fault names the same `recovery_target`, so N events lead to one
    recovery and one alert (the recovery limiter refuses the duplicates).
    """
    if panic(group_states, threshold):
        return recovery_target(group_states, graph) or component
    return component
