"""What one recovery run did: attempts, validation, rollback, breaker moves; as a dict and markdown.

The flows write `markdown()` as the run's artifact (key `recovery-<component>`), return
`to_dict()`, and fail the run with `message` when the outcome is `failed`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Attempt", "Outcome", "RecoveryReport", "artifact_key"]

Outcome = Literal["running", "succeeded", "failed", "refused"]


@dataclass
class Attempt:
    """One strategy run: the call, its validation and what followed."""

    strategy: str
    phase: str
    attempt: int
    started_at: float
    request: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] | None = None
    error: str | None = None
    validation: str = "not run"  # passed | failed | not run
    checks: int = 0
    rollback: str | None = None
    breaker: str | None = None
    backoff_seconds: float | None = None
    seconds: float = 0.0


@dataclass
class RecoveryReport:
    """The record of one recovery run."""

    recovery_id: str
    component: str
    failure_type: str | None = None
    reason: str | None = None
    strategy: str | None = None
    outcome: Outcome = "running"
    message: str = ""
    alerted: bool = False
    breaker_before: str | None = None
    breaker_after: str | None = None
    seconds: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    # success statistics of each strategy on this component, as kept in the store
    stats: list[dict[str, Any]] = field(default_factory=list)

    def finish(self, outcome: Outcome, message: str) -> RecoveryReport:
        """Set the outcome and its one-line message (the first message wins)."""
        self.outcome = outcome
        self.message = self.message or " ".join(message.split())
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        """The run's artifact: a summary line and a table of attempts."""
        lines = [
            f"# Recovery of `{self.component}`: {self.outcome}",
            "",
            f"{self.message}",
            "",
            "| | |",
            "|---|---|",
            f"| recovery id | `{self.recovery_id}` |",
            f"| trigger | {self.reason or '-'} (failure type: {self.failure_type or 'unknown'}) |",
            f"| strategy asked | {self.strategy or 'decided by escalation'} |",
            f"| breaker | {self.breaker_before or '-'} -> {self.breaker_after or '-'} |",
            f"| duration | {self.seconds:.2f} s |",
            f"| operator alerted | {'yes' if self.alerted else 'no'} |",
            f"| events | {', '.join(self.events) or '-'} |",
        ]
        if self.attempts:
            lines += [
                "",
                "| # | phase | strategy | call | validation | rollback | breaker | next wait |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for i, a in enumerate(self.attempts, 1):
                call = f"error: {a.error}" if a.error else "ok"
                wait = "-" if a.backoff_seconds is None else f"{a.backoff_seconds:.2f} s"
                valid = f"{a.validation} ({a.checks} checks)"
                row = [
                    str(i),
                    a.phase,
                    a.strategy,
                    call,
                    valid,
                    a.rollback or "-",
                    a.breaker or "-",
                    wait,
                ]
                lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        if self.stats:
            lines += ["", "| strategy | attempts | successes | success rate |", "|---|---|---|---|"]
            for st in self.stats:
                rate = st["successes"] / st["attempts"] if st["attempts"] else 0.0
                lines.append(
                    f"| {st['strategy']} | {st['attempts']} | {st['successes']} | {rate:.0%} |"
                )
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def artifact_key(component: str) -> str:
    """`recovery-<component>`, reduced to what artifact keys allow (lowercase, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", component.lower()).strip("-")
    return f"recovery-{slug or 'component'}"
