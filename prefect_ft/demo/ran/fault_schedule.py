"""The fault schedule of the RAN demo, parsed and checked (`faults` applies it; its module
docstring describes the format). A bad field gets a message naming the fault, the field and the
allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["CLOCKS", "COMPONENTS", "KINDS", "UNITS", "Fault", "FaultSchedule"]

COMPONENTS = ("doc-processing", "ml-inference", "ipc", "quality-validation")
CLOCKS = ("run", "calls")
UNITS = ("calls", "seconds")  # a fault's `duration_unit` (with clock `calls`)
# kind -> its own fields with their defaults
KINDS: dict[str, dict[str, float]] = {
    "error_burst": {"rate": 1.0},
    "periodic": {"every": 3},
    "latency": {"delay": 0.5},
    "memory_leak": {"mb_per_call": 4, "budget_mb": 64},
    "crash": {},
    "drop_connections": {"rate": 0.5},
}


@dataclass(frozen=True, slots=True)
class Fault:
    component: str
    kind: str
    start: float
    duration: float
    params: dict[str, float] = field(default_factory=dict)
    clock: str = "run"
    timed: bool = False  # clock `calls`: starts at call `start`, lasts `duration` seconds

    @property
    def end(self) -> float:
        return self.start + self.duration

    def label(self) -> str:
        where = f"{self.kind} on {self.component}"
        if self.clock != "calls":
            return f"{where} [{self.start:g}s, {self.end:g}s)"
        if self.kind == "crash":
            return f"{where} at call {self.start:g} (down up to {self.duration:g}s)"
        if self.timed:
            return f"{where} from call {self.start:g} for {self.duration:g}s"
        return f"{where} [calls {self.start:g}-{self.end - 1:g}]"


def _num(where: str, name: str, value: Any, low: float, high: float | None = None) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        allowed = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise ValueError(f"{where}: {name} must be a number {allowed} (got {value!r})")
    return float(value)


@dataclass(frozen=True, slots=True)
class FaultSchedule:
    seed: int
    faults: tuple[Fault, ...]
    clock: str = "run"

    @classmethod
    def from_dict(cls, data: Any, source: str = "fault schedule") -> FaultSchedule:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: must be a mapping with 'seed' and 'faults'")
        unknown = set(data) - {"seed", "faults", "clock"}
        if unknown:
            raise ValueError(
                f"{source}: unknown keys {sorted(unknown)} (allowed: seed, clock, faults)"
            )
        clock = data.get("clock", "run")
        if clock not in CLOCKS:
            raise ValueError(f"{source}: clock must be one of {', '.join(CLOCKS)} (got {clock!r})")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"{source}: seed must be an integer (got {seed!r})")
        items = data.get("faults") or []
        if not isinstance(items, list):
            raise ValueError(f"{source}: faults must be a list")
        faults = tuple(
            replace(_fault(f"{source}: fault {i + 1}", f), clock=clock) for i, f in enumerate(items)
        )
        for i, (f, item) in enumerate(zip(faults, items, strict=True)):
            if clock == "run" and item.get("duration_unit", "seconds") != "seconds":
                raise ValueError(
                    f"{source}: fault {i + 1}: duration_unit must be 'seconds' with clock 'run'"
                )
            if f.kind == "crash" and item.get("duration_unit") == "calls":
                raise ValueError(f"{source}: fault {i + 1}: a crash's duration is always seconds")
        return cls(seed, faults, clock)

    @classmethod
    def load(cls, path: str | Path) -> FaultSchedule:
        import yaml

        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise ValueError(
                f"fault schedule {str(p)!r}: cannot be read ({exc.strerror})"
            ) from None
        except yaml.YAMLError as exc:
            raise ValueError(f"fault schedule {str(p)!r}: not valid YAML ({exc})") from None
        return cls.from_dict(data, f"fault schedule {p.name!r}")

    def scaled(self, factor: float) -> FaultSchedule:
        """The same schedule with every time multiplied by `factor` (to compress it for tests)."""
        _num("scaled", "factor", factor, 0.0)

        def scale(f: Fault) -> Fault:
            if f.clock == "calls":  # only a crash's down time and timed windows are seconds
                timed = f.kind == "crash" or f.timed
                return replace(f, duration=f.duration * factor) if timed else f
            return replace(f, start=f.start * factor, duration=f.duration * factor)

        return replace(self, faults=tuple(scale(f) for f in self.faults))

    @property
    def length(self) -> float:
        return max((f.end for f in self.faults), default=0.0)


def _fault(where: str, item: Any) -> Fault:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be a mapping (got {item!r})")
    comp = item.get("component")
    if comp not in COMPONENTS:
        raise ValueError(f"{where}: unknown component {comp!r}; allowed: {', '.join(COMPONENTS)}")
    kind = item.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    if kind == "crash" and comp != "ml-inference":
        raise ValueError(
            f"{where}: kind 'crash' crashes the model server: component must be 'ml-inference'"
        )
    extra = (
        set(item) - {"component", "kind", "start", "duration", "duration_unit"} - set(KINDS[kind])
    )
    if extra:
        raise ValueError(f"{where}: unknown fields {sorted(extra)} for kind {kind!r}")
    params = {k: item.get(k, d) for k, d in KINDS[kind].items()}
    for k in ("rate",):
        if k in params:
            params[k] = _num(where, k, params[k], 0.0, 1.0)
    for k in ("every",):
        if k in params:
            params[k] = _num(where, k, params[k], 1.0)
    for k in ("delay", "mb_per_call", "budget_mb"):
        if k in params:
            params[k] = _num(where, k, params[k], 0.0)
    start = _num(where, "start", item.get("start", 0), 0.0)
    duration = _num(where, "duration", item.get("duration"), 0.0)
    unit = item.get("duration_unit", "calls")
    if unit not in UNITS:
        raise ValueError(f"{where}: duration_unit must be one of {', '.join(UNITS)} (got {unit!r})")
    return Fault(comp, kind, start, duration, params, timed=unit == "seconds" and kind != "crash")
