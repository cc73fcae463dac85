"""Test components for the control channel: a scriptable one, an async one, a hanging one."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class Component:
    """A sync ComponentControl whose health and actions the test scripts."""

    def __init__(self) -> None:
        self.healthy = True
        self.version = "v2"
        self.calls: list[tuple[str, dict]] = []
        self.fail_with: Exception | None = None
        self.refuse = False

    def _act(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((name, body))
        if self.fail_with is not None:
            raise self.fail_with
        if self.refuse:
            return {"ok": False, "reason": f"{name} refused: busy"}
        return {"action": name}

    def health(self, deep: bool) -> dict[str, Any]:
        self.calls.append(("health", {"deep": deep}))
        if self.healthy:
            return {"healthy": True, "version": self.version, "deep": deep}
        return {"healthy": False, "reason": "model answers garbage"}

    def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version = body.get("version", self.version)
        return self._act("reload", body)

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._act("restart", body)

    def reset_connections(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._act("reset_connections", body)

    def set_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._act("resources", body)


class AsyncComponent:
    """An async ComponentControl without set_resources (the route answers 501)."""

    def __init__(self) -> None:
        self.restarts = 0

    async def health(self, deep: bool) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"healthy": True, "restarts": self.restarts}

    async def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"reloaded": body.get("version")}

    async def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        self.restarts += 1
        return {"restarts": self.restarts}

    async def reset_connections(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}


class Hanging(Component):
    """A component whose restart hangs until `release` is set (tests set it on teardown)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        self.release.wait(60)
        return {"action": "restart"}


# in-process entry points: python:tests.recovery.components:LOCAL
LOCAL = Component()
HANGING = Hanging()


class Patient(Component):
    """Starts unhealthy; the handler methods named in `cures` make it healthy again.

    Health reports the model version and the resource budget, as a model server would.
    """

    def __init__(self, cures: set[str] = frozenset()) -> None:
        super().__init__()
        self.healthy = False
        self.cures = set(cures)
        self.budget = {"memory_mb": 1000, "concurrency": 8}

    def _act(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = super()._act(name, body)
        if name in self.cures:
            self.healthy = True
        return answer

    def health(self, deep: bool) -> dict[str, Any]:
        answer = super().health(deep)
        return {**answer, "version": self.version, "resources": dict(self.budget)}

    def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        previous = self.version
        self.version = body.get("version", "v3" if "scope" not in body else self.version)
        return {**self._act("reload", body), "previous_version": previous}

    def set_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        self.budget.update(body)
        return self._act("resources", body)


class Registry:
    """Holds objects for `python:tests.recovery.components:REG.<name>` endpoints."""


REG = Registry()
_count = [0]


def endpoint_for(obj: object) -> str:
    """An in-process control endpoint naming `obj`."""
    _count[0] += 1
    name = f"c{_count[0]}"
    setattr(REG, name, obj)
    return f"python:tests.recovery.components:REG.{name}"


class SlowToWake(Patient):
    """Cured by a restart, but its first deep check after the restart still fails (warming up)."""

    def __init__(self) -> None:
        super().__init__(cures={"restart"})
        self.cold_checks = 1

    def health(self, deep: bool) -> dict[str, Any]:
        if self.healthy and deep and self.cold_checks > 0:
            self.cold_checks -= 1
            return {"healthy": False, "reason": "warming up"}
        return super().health(deep)


class CrashedProcess(Patient):
    """A component whose process is not running: its supervisor answers health with
    `running: false` until a restart respawns it; resetting connections cannot bring it back."""

    def __init__(self) -> None:
        super().__init__(cures={"restart"})

    def health(self, deep: bool) -> dict[str, Any]:
        if not self.healthy:
            self.calls.append(("health", {"deep": deep}))
            return {"healthy": False, "running": False, "reason": "the process is not running"}
        return super().health(deep)
