"""The demo's block presets: `blocks/` applied to the demo's fresh Prefect server, in one pass.

`prefect-ft blocks apply` reads each document back before it writes it and re-loads every
referenced policy by name (about 50 API calls for the 16 documents); on the demo's fresh server
nothing exists yet, so this writes each document once, and a component spec references the policy
blocks saved a moment before, as they are in memory. What differs from the files, and why:

- `control_endpoint` of the components served by the model server points at the demo's server
  (the files say `127.0.0.1:8000`, a port the demo does not own);
- their recovery policy has no fixed `action`, so the failure type picks the strategy (a dropped
  connection gets a connection reset, a failed generation a model reload, as issue 9's table says).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SERVED", "apply_demo_blocks"]

SERVED = ("ml-inference", "ipc")  # the components whose control channel is the model server


def apply_demo_blocks(blocks_dir: Path, model_url: str, say: Callable[[str], None]) -> int:
    """Write every document of `blocks_dir` (see the module docstring); how many were written."""
    from prefect_ft.cli.app import BLOCK_TYPES, load_documents

    docs = load_documents(blocks_dir)  # a bad file fails here, naming it, before any write
    for kind in BLOCK_TYPES.values():
        kind.register_type_and_schema()
    saved: dict[tuple[str, str], Any] = {}
    for doc in docs:  # policies come before the specs that reference them
        block = doc.block
        slug = doc.kind.get_block_type_slug()
        if doc.refs:  # the policies saved above: saved as references, not copies
            block = block.model_copy(
                update={
                    f: saved[(getattr(block, f).get_block_type_slug(), ref)]
                    for f, ref in doc.refs.items()
                }
            )
        if slug == "ft-component-spec" and doc.name in SERVED:
            block = block.model_copy(update={"control_endpoint": model_url})
        if slug == "ft-recovery-policy" and doc.name in SERVED:
            block = block.model_copy(update={"action": None})
        block.save(doc.name, overwrite=True)
        saved[(slug, doc.name)] = block
    say(
        f"block presets applied from {blocks_dir} ({len(docs)} documents; the model server's "
        f"components recover through {model_url})"
    )
    return len(docs)
