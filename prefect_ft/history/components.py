"""How a guarded task run names its component, so that history can find it again.

A guarded task's Prefect `task_key` is the plain function's key followed by
`|ft:component:<name>`: the task run carries it at no cost, `read_task_runs` returns it, and
the plain part stays distinct per function and stable across processes. A tag would do the
same, but any tag makes Prefect's task engine take a tag-concurrency lease around every run
(a hop through Prefect's concurrency service per run, and a lease request whenever its
5-second cache expires, which stalls tagged runs when SQLite is locked; DESIGN §10), so the tag `ft:component:<name>` is only added on
request (`ft_task(..., tag_component=True)`), for the UI's Runs page filter, and is still read
(older runs have it).

Pure: no Prefect, no I/O. Used by `prefect_ft.tasks` (naming) and `prefect_ft.history` (reading).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "COMPONENT_KEY_SEPARATOR",
    "COMPONENT_TAG_PREFIX",
    "component_tag",
    "component_task_key",
    "run_component",
]

COMPONENT_TAG_PREFIX = "ft:component:"
# Prefect's own keys are "<qualname>-<hash>" (or a dotted type name): they never hold a "|"
COMPONENT_KEY_SEPARATOR = "|" + COMPONENT_TAG_PREFIX


def component_tag(name: str) -> str:
    """The opt-in tag naming `name` (`ft:component:<name>`)."""
    return f"{COMPONENT_TAG_PREFIX}{name}"


def component_task_key(task_key: str, name: str) -> str:
    """`task_key` of a task guarded by component `name` (a key already naming one is re-named)."""
    return f"{task_key.partition(COMPONENT_KEY_SEPARATOR)[0]}{COMPONENT_KEY_SEPARATOR}{name}"


def run_component(task_key: str | None, tags: Iterable[str] | None = None) -> str | None:
    """The component a task run was guarded by: from its task_key, else from its tag; else None."""
    _, found, name = (task_key or "").partition(COMPONENT_KEY_SEPARATOR)
    if found and name:
        return name
    for tag in tags or ():
        if tag.startswith(COMPONENT_TAG_PREFIX) and len(tag) > len(COMPONENT_TAG_PREFIX):
            return tag[len(COMPONENT_TAG_PREFIX) :]
    return None
