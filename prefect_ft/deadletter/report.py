"""What a replay reports (`ReplayReport`), and what a replayed call can ask about itself
(`current_replay()`: its idempotency key, and whether it is an in-doubt re-run)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ReplayInfo", "ReplayReport", "current_replay", "replaying"]


@dataclass(frozen=True, slots=True)
class ReplayInfo:
    """The replayed call being run (see `current_replay`).

    Attributes:
        key: deterministic per dead letter, the same on every re-run: use it as an idempotency key.
        item_id: the dead letter's id, `<breaker>/<n>`.
        attempt: which run of this item this is (1 for the first).
        in_doubt: True when an earlier replayer died while running this item.
    """

    key: str
    item_id: str
    attempt: int
    in_doubt: bool


@dataclass
class ReplayReport:
    """What one `replay()` did.

    Attributes:
        done: ids of the items run and marked done now.
        failed: ids of the items whose call raised (pending again, or failed for good after
            `max_attempts` runs).
        rejected: ids of items refused for a missing or wrong signature (never unpickled; see
            `prefect_ft.deadletter.signing`), now `rejected-signature`.
        expired: done and superseded items deleted after `PREFECT_FT_DEADLETTER_RETENTION_SECONDS`.
        in_doubt: ids of items taken over from a replayer that died mid-run (re-run, or parked
            with `in_doubt="skip"`).
        waiting: breaker -> why its items were not (all) replayed now.
        remaining: items that a later replay may still run (pending, or running elsewhere).
            Items parked for an operator (in-doubt, failed, unreplayable, rejected-signature)
            are not counted: `prefect-ft deadletters ls --status in-doubt` lists them.
    """

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    expired: int = 0
    waiting: dict[str, str] = field(default_factory=dict)
    remaining: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_current: contextvars.ContextVar[ReplayInfo | None] = contextvars.ContextVar(
    "prefect_ft_replay", default=None
)


def current_replay() -> ReplayInfo | None:
    """The replayed call running in this context, or None outside a replay."""
    return _current.get()


@contextlib.contextmanager
def replaying(info: ReplayInfo) -> Iterator[None]:
    """Run the block as the replayed call `info` (what `current_replay()` answers inside it)."""
    token = _current.set(info)
    try:
        yield
    finally:
        _current.reset(token)
