"""One dead letter: the record of a refused call, its statuses, and how its inputs are encoded.

Inputs are stored as JSON when they survive a JSON round trip unchanged, else as
cloudpickle + base64; `parameters` is a readable rendering for people and the UI. Inputs that
cannot be pickled at all are not stored (`encoding="none"`, status `unreplayable`, the pickling
error in `error`). Reading the inputs back checks the item's signature first (`signing`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import cloudpickle

from prefect_ft.deadletter import signing

__all__ = [
    "ACTIVE",
    "FINISHED",
    "FINISHED_KEPT",
    "TERMINAL",
    "DeadLetter",
    "ItemStatus",
    "encode_inputs",
    "render",
]

ItemStatus = Literal[
    "pending",
    "running",
    "done",
    "failed",
    "in-doubt",
    "superseded",
    "unreplayable",
    "rejected-signature",
]
# Replay runs only these; every other status waits for an operator (or retention), so the
# low-water mark may pass it.
ACTIVE: frozenset[str] = frozenset({"pending", "running"})
FINISHED: frozenset[str] = frozenset({"done", "failed", "superseded"})
FINISHED_KEPT: frozenset[str] = frozenset({"done", "superseded"})  # deleted after retention
# Never replayed again (an operator may still `retry` some): not counted as remaining.
TERMINAL: frozenset[str] = FINISHED | {"unreplayable", "rejected-signature"}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected call.

    Attributes:
        breaker: the breaker that refused it (or whose bulkhead was full).
        seq: its number in the breaker's queue; `id` is `"<breaker>/<seq>"`.
        task_name: the Prefect task's name.
        task_path: `module:qualname` of the task, to find the function in another process.
        component: the component the refused call belongs to (the breaker's policy name).
        policy: the policy spec: a name to resolve, or `pickle:<base64>` of an `FTPolicy`.
        parameters: the call's parameters, rendered for reading.
        reason: why it was refused (the error's message).
        rejected_by: "breaker" or "bulkhead".
        retry_after: seconds the breaker asked callers to wait, when known.
        at: when (store clock).
        flow_run_id: the flow run of the refused task run, if any.
        task_run_id: the refused task run, if any.
        status: pending, running, done, failed or in-doubt.
        attempts: how many times a replay started it.
        in_doubt_reruns: how many of those took over from a replayer that died mid-run.
        holder: the replayer holding it while running.
        lease_until: when that holder's lease ends (store clock).
        error: the last replay error.
        result: a short rendering of the replayed call's result (or what superseded it).
        signature: HMAC-SHA256 of what replay would unpickle or run (`signing`).
        match_keys: keys a later completed run of the same call is recognised by (`supersede`).
        finished_at: when it reached done or superseded (store clock; retention counts from it).
        version: the record's store version (not stored; for compare-and-set).
    """

    breaker: str
    seq: int
    task_name: str
    task_path: str
    component: str
    policy: str
    parameters: dict[str, Any]
    reason: str
    rejected_by: str = "breaker"
    retry_after: float | None = None
    at: float = 0.0
    flow_run_id: str | None = None
    task_run_id: str | None = None
    status: ItemStatus = "pending"
    attempts: int = 0
    in_doubt_reruns: int = 0
    holder: str | None = None
    lease_until: float = 0.0
    error: str | None = None
    result: str | None = None
    encoding: str = "json"
    payload: str = ""
    signature: str = ""
    match_keys: list[str] = field(default_factory=list)
    finished_at: float = 0.0
    version: int = field(default=0, compare=False)

    @property
    def id(self) -> str:
        return f"{self.breaker}/{self.seq}"

    @property
    def replay_key(self) -> str:
        """A deterministic key for this call: the same on every re-run (idempotency key)."""
        return f"prefect-ft-replay:{self.breaker}/{self.seq}"

    def inputs(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's positional and keyword arguments.

        Raises:
            SignatureError: the item is unsigned or its signature does not match; nothing was
                unpickled.
            ValueError: the inputs were never kept (`unreplayable`).
        """
        signing.check(self)
        if self.encoding == "none":
            raise ValueError(f"dead letter {self.id}: its inputs were not kept ({self.error})")
        if self.encoding == "json":
            data = json.loads(self.payload)
        else:
            data = cloudpickle.loads(base64.b64decode(self.payload))
        return tuple(data["args"]), dict(data["kwargs"])

    def _dump(self) -> str:
        out = asdict(self)
        out.pop("version")
        return json.dumps(out)

    @classmethod
    def _load(cls, text: str, version: int) -> DeadLetter:
        data = json.loads(text)
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known}, version=version)


def encode_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """`(encoding, payload)`: JSON when it round-trips exactly, else cloudpickle + base64."""
    data = {"args": list(args), "kwargs": dict(kwargs)}
    try:
        text = json.dumps(data, allow_nan=False)
        if _same(json.loads(text), data):
            return "json", text
    except (TypeError, ValueError):
        pass
    return "cloudpickle", base64.b64encode(cloudpickle.dumps(data)).decode("ascii")


def render(value: Any, limit: int = 500) -> Any:
    """A readable, JSON-safe rendering of a parameter value (long reprs are cut)."""
    try:
        json.dumps(value, allow_nan=False)
        if len(json.dumps(value)) <= limit:
            return value
    except (TypeError, ValueError):
        pass
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (JSON turns tuples into lists)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
