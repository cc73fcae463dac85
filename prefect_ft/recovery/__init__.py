"""Recovery: the component control channel, its client, and the recovery executor.

- `control`: `ComponentControl`, `control_app`, `serve_control` (the component side);
- `client`: `ControlClient`, `LocalControl`, `connect` (the recovery side);
- `executor`: runs one recovery of one component (imports Prefect; not imported here).

Decisions (which strategy, when to escalate, how long to back off) live in
`prefect_ft.core.recovery`; this room only talks to components, the store and Prefect.
"""

from prefect_ft.recovery.client import ControlClient, LocalControl, connect
from prefect_ft.recovery.control import ComponentControl, ControlServer, control_app, serve_control

__all__ = [
    "ComponentControl",
    "ControlClient",
    "ControlServer",
    "LocalControl",
    "connect",
    "control_app",
    "serve_control",
]
