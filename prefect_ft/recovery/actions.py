"""What each recovery strategy does through the control channel, and how to undo it.

| strategy | control call | rollback when validation fails |
|---|---|---|
| `connection-reset` | `POST /reset-connections` | none |
| `model-reload` | `POST /reload` | `POST /reload {"version": <previous>}` |
| `graceful-restart` | `POST /restart {"drain": true}` | none |
| `resource-reallocation` | `POST /resources` with `core.reallocation.next_budget` | `POST /resources` with the old budget |
| `validation-reset` | `POST /reload {"scope": "validation"}` | none |

The previous model version comes from the reload answer's `previous_version`, else from the
shallow health answer's `version` taken before the reload; without either the rollback asks for
`{"rollback": true}` and lets the component pick. Whether to roll back at all is the core's
decision (`core.recovery.rollback_for`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prefect_ft.core.reallocation import budget_of, next_budget
from prefect_ft.exceptions import ControlError

__all__ = ["Action", "arun_strategy"]


@dataclass
class Action:
    """One strategy's call: its answer, and the coroutine factory that undoes it (if any)."""

    strategy: str
    request: dict[str, Any]
    answer: dict[str, Any]
    undo: Callable[[], Awaitable[dict[str, Any]]] | None = None
    undo_request: dict[str, Any] | None = None


async def _shallow(client: Any) -> dict[str, Any]:
    try:
        return await client.ahealth(deep=False)
    except ControlError:  # a component too broken to answer still gets the action
        return {}


async def arun_strategy(client: Any, strategy: str) -> Action:
    """Run `strategy` on the component behind `client`; ControlError when the call fails."""
    if strategy == "connection-reset":
        return Action(strategy, {}, await client.areset_connections())
    if strategy == "graceful-restart":
        body = {"drain": True}
        return Action(strategy, body, await client.arestart(**body))
    if strategy == "validation-reset":
        body = {"scope": "validation"}
        return Action(strategy, body, await client.areload(**body))
    if strategy == "model-reload":
        before = await _shallow(client)
        answer = await client.areload()
        previous = answer.get("previous_version") or before.get("version")
        back: dict[str, Any] = {"version": previous} if previous else {"rollback": True}
        return Action(strategy, {}, answer, lambda: client.areload(**back), back)
    if strategy == "resource-reallocation":
        current = budget_of(await _shallow(client))
        budget = next_budget(current)
        answer = await client.aresources(**budget)
        if not current:
            return Action(strategy, budget, answer)
        return Action(strategy, budget, answer, lambda: client.aresources(**current), current)
    raise ValueError(f"strategy: unknown {strategy!r}")
