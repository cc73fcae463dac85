"""Which alerts reach a person: duplicate suppression and a rate limit per component.

An alert has a component, a kind (`fault`, `health`, `recovery-failed`, `emergency`) and a
fingerprint (what makes two alerts "the same": the fault pattern and severity, the health level,
the recovery strategy). `decide(state, alert, now, policy)` returns the decision and the next
state; the caller keeps the state (in the shared store, so every process agrees).

| rule | decision |
|---|---|
| the same (component, kind, fingerprint) was sent less than `dedup_seconds` ago | `duplicate` |
| the component has had `rate_limit` alerts sent in the last `rate_window_seconds` | `rate-limited` |
| otherwise | `send` (with how many were suppressed for this component since its last send) |
| kind in `policy.always` (default: `emergency`) | `send`, never suppressed or counted |

A suppressed alert is counted, so the next one sent says how many were held back: nothing is
lost silently. Times are seconds on one clock (the store's); no clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["Alert", "AlertDecision", "AlertPolicy", "AlertState", "decide"]

KINDS = ("fault", "health", "recovery-failed", "emergency")


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """How much an operator is told.

    Attributes:
        dedup_seconds: an identical alert within this time is a duplicate, in [0, 86400].
        rate_limit: alerts sent per component per window, in [1, 1000].
        rate_window_seconds: the rate limit's window, in [1, 86400].
        always: kinds that are always sent (never suppressed, not counted).
    """

    dedup_seconds: float = 600.0
    rate_limit: int = 5
    rate_window_seconds: float = 3600.0
    always: tuple[str, ...] = ("emergency",)

    def __post_init__(self) -> None:
        for name, low, high in (
            ("dedup_seconds", 0.0, 86400.0),
            ("rate_limit", 1, 1000),
            ("rate_window_seconds", 1.0, 86400.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number in [{low}, {high}] (got {value!r})")
            if not low <= value <= high:  # NaN fails this too
                raise ValueError(f"{name} must be in [{low}, {high}] (got {value!r})")
        if not isinstance(self.rate_limit, int):
            raise ValueError(f"rate_limit must be a whole number (got {self.rate_limit!r})")
        unknown = [k for k in self.always if k not in KINDS]
        if unknown:
            raise ValueError(f"always: unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing an operator may be told about."""

    component: str
    kind: str
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if not self.component:
            raise ValueError("component must be a non-empty name")

    @property
    def key(self) -> str:
        return f"{self.component}|{self.kind}|{self.fingerprint}"


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the decisions remember (plain data: `to_dict` / `from_dict` for the store).

    Attributes:
        last_sent: alert key -> when it was last sent.
        sent: component -> times of its recent sends (within the rate window).
        suppressed: component -> alerts held back since its last send.
    """

    last_sent: dict[str, float] = field(default_factory=dict)
    sent: dict[str, tuple[float, ...]] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "last_sent": dict(self.last_sent),
            "sent": {k: list(v) for k, v in self.sent.items()},
            "suppressed": dict(self.suppressed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AlertState:
        last = data.get("last_sent") or {}
        sent = data.get("sent") or {}
        supp = data.get("suppressed") or {}
        return cls(
            {str(k): float(v) for k, v in dict(last).items()},  # type: ignore[call-overload]
            {str(k): tuple(float(t) for t in v) for k, v in dict(sent).items()},  # type: ignore[call-overload]
            {str(k): int(v) for k, v in dict(supp).items()},  # type: ignore[call-overload]
        )


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """`action` is `send`, `duplicate` or `rate-limited`; `suppressed_before` is how many alerts
    of this component were held back since its previous send (say so in the one sent)."""

    action: str
    suppressed_before: int = 0

    @property
    def send(self) -> bool:
        return self.action == "send"


def _prune(state: AlertState, now: float, policy: AlertPolicy) -> AlertState:
    """Forget sends older than both windows, so the state stays small."""
    last = {k: t for k, t in state.last_sent.items() if now - t < policy.dedup_seconds}
    sent = {
        c: kept
        for c, times in state.sent.items()
        if (kept := tuple(t for t in times if now - t < policy.rate_window_seconds))
    }
    return AlertState(last, sent, dict(state.suppressed))


def decide(
    state: AlertState, alert: Alert, now: float, policy: AlertPolicy
) -> tuple[AlertDecision, AlertState]:
    """Decide whether `alert` is sent at `now` (see the module docstring's table)."""
    state = _prune(state, now, policy)
    if alert.kind in policy.always:
        return AlertDecision("send"), state
    comp = alert.component
    if alert.key in state.last_sent:
        action = "duplicate"
    elif len(state.sent.get(comp, ())) >= policy.rate_limit:
        action = "rate-limited"
    else:
        held = state.suppressed.get(comp, 0)
        suppressed = {k: v for k, v in state.suppressed.items() if k != comp}
        new = AlertState(
            {**state.last_sent, alert.key: now},
            {**state.sent, comp: (*state.sent.get(comp, ()), now)},
            suppressed,
        )
        return AlertDecision("send", held), new
    counted = replace(
        state, suppressed={**state.suppressed, comp: state.suppressed.get(comp, 0) + 1}
    )
    return AlertDecision(action), counted
