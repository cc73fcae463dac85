"""What the scaled stack needs from the host: PostgreSQL's tools, free ports, its processes.

Kept apart from `prefect_ft.demo.scale` (which re-exports the public names).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

__all__ = ["MARKER", "PG_LIB", "StackError", "have_services", "marked_processes"]

PG_LIB = Path("/usr/lib/postgresql")
MARKER = "PREFECT_FT_SCALE_STACK"


class StackError(RuntimeError):
    """A part of the stack did not come up; the message holds its log tail."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_tool(name: str) -> str | None:
    """PostgreSQL's `name` on PATH, else under Debian's /usr/lib/postgresql/<newest>/bin."""
    bins = sorted(
        PG_LIB.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    return shutil.which(name) or next((str(b / name) for b in bins if (b / name).exists()), None)


def _pg(name: str) -> str:
    found = _pg_tool(name)
    if found is None:
        raise StackError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def have_services() -> bool:
    """Whether PostgreSQL (initdb, pg_ctl, createdb) and redis-server are installed."""
    tools = ("initdb", "pg_ctl", "createdb")
    return all(_pg_tool(t) for t in tools) and shutil.which("redis-server") is not None


def marked_processes(token: str) -> list[int]:
    """Pids of live processes whose environment carries this stack's marker."""
    needle = f"{MARKER}={token}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
    return pids
