"""The demo's block presets: `blocks/` applied to the demo's fresh Prefect server, in one pass.

`prefect-ft blocks apply` reads each document back before it writes it and re-loads every
referenced policy by name (about 50 API calls for the 16 documents); on the demo's fresh server
nothing exists yet, so this writes each document once, and a component spec references the policy
blocks saved a moment before, as they are in memory. What differs from the files, and why:

- `control_endpoint` of the components served by the model server points at the demo's
  supervisor of that server (`servers.CONTROL_ENDPOINT`; the files say `127.0.0.1:8000`, a port
  the demo does not own), which can restart the process after a crash;
- their recovery policy has no fixed `action`, so the failure type picks the strategy (a dropped
  connection gets a connection reset, a failed generation a model reload, as issue 9's table says).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SERVED", "apply_demo_blocks"]

SERVED = ("ml-inference", "ipc")  # the components whose control channel is the model server


def apply_demo_blocks(blocks_dir: Path, control_endpoint: str, say: Callable[[str], None]) -> int:
    """Write every document of `blocks_dir` (see the module docstring); how many were written."""
    import asyncio

    from prefect_ft.cli.app import load_documents

    docs = load_documents(blocks_dir)  # a bad file fails here, naming it, before any write
    blocks: list[tuple[str, str, Any, dict[str, str]]] = []
    for doc in docs:  # policies come before the specs that reference them
        block, slug = doc.block, doc.kind.get_block_type_slug()
        if slug == "ft-component-spec" and doc.name in SERVED:
            block = block.model_copy(update={"control_endpoint": control_endpoint})
        if slug == "ft-recovery-policy" and doc.name in SERVED:
            block = block.model_copy(update={"action": None})
        blocks.append((slug, doc.name, block, doc.refs))
    asyncio.run(_write(blocks))
    say(
        f"block presets applied from {blocks_dir} ({len(docs)} documents; the model server's "
        f"components recover through {control_endpoint})"
    )
    return len(docs)


async def _write(blocks: list[tuple[str, str, Any, dict[str, str]]]) -> None:
    """Register each block type once, then one create call per document (policies at once).

    `Block.save` registers the block's type and schema (and those of every nested block) again on
    each call: about five requests per document, most of the 82 s this step took on a loaded
    machine. Here the types are registered once; a document that already exists (a reused
    `--home`) is overwritten with `asave`.
    """
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentCreate
    from prefect.exceptions import ObjectAlreadyExists

    from prefect_ft.cli.app import BLOCK_TYPES

    saved: dict[tuple[str, str], Any] = {}
    async with get_client() as client:
        for kind in BLOCK_TYPES.values():
            if kind._block_schema_id is None:  # not registered yet as a nested type
                await kind.aregister_type_and_schema(client=client)

        async def create(slug: str, name: str, block: Any) -> None:
            doc = block._to_block_document(name=name, include_secrets=True)
            fields = {"name", "block_schema_id", "block_type_id", "data", "is_anonymous"}
            try:
                made = await client.create_block_document(
                    block_document=BlockDocumentCreate(**doc.model_dump(include=fields))
                )
                block._block_document_id, block._block_document_name = made.id, name
            except ObjectAlreadyExists:
                await block.asave(name, overwrite=True)
            saved[(slug, name)] = block

        await asyncio.gather(*(create(s, n, b) for s, n, b, refs in blocks if not refs))
        specs = []
        for slug, name, block, refs in blocks:
            if refs:  # the policies saved above, so the spec stores references, not copies
                update = {
                    f: saved[(getattr(block, f).get_block_type_slug(), r)] for f, r in refs.items()
                }
                specs.append(create(slug, name, block.model_copy(update=update)))
        await asyncio.gather(*specs)
