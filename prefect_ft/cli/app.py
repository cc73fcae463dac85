"""The `prefect-ft` command line (cyclopts, like Prefect's own CLI).

`prefect-ft blocks apply [--path blocks]` registers the prefect-ft block types and creates or
updates one block document per YAML file `<path>/<block-type-slug>/<name>.yaml`. Every file is
parsed and validated before anything is written, so bad input applies nothing; a document whose
data already matches its file is left alone and reported "unchanged". In `ft-component-spec`
files, `breaker`, `bulkhead` and `recovery` may name a document of the matching type (from the
same directory tree, or already on the server); it is saved as a reference, so editing the named
document in the UI changes the component too. A mapping there embeds the policy instead.

This module does not resolve policies for tasks (`prefect_ft.tasks.policies`) and never deletes
documents whose files were removed. Other command groups join `app` the way `blocks` does:
build a `cyclopts.App(name=...)` in their own module and `app.command(...)` it here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cyclopts
import yaml
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError

from prefect_ft import __version__
from prefect_ft.blocks import BulkheadPolicy, CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
from prefect_ft.cli.alerts import alerts_app
from prefect_ft.cli.breakers import breakers_app
from prefect_ft.cli.commands import demo, detect, replay
from prefect_ft.cli.deadletters import deadletters_app
from prefect_ft.cli.emergency import emergency_clear, emergency_stop
from prefect_ft.cli.status import status

__all__ = [
    "BLOCK_TYPES",
    "DocumentError",
    "DocumentFile",
    "app",
    "apply_documents",
    "blocks_app",
    "load_documents",
    "main",
]

BLOCK_TYPES: dict[str, type[Block]] = {
    cls.get_block_type_slug(): cls
    for cls in (CircuitBreakerPolicy, BulkheadPolicy, RecoveryPolicy, ComponentSpec)
}
# ComponentSpec fields that may name another document instead of embedding it
_REFERENCES: dict[str, type[Block]] = {
    "breaker": CircuitBreakerPolicy,
    "bulkhead": BulkheadPolicy,
    "recovery": RecoveryPolicy,
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

Lookup = Callable[[type[Block], str], Block | None]


class DocumentError(Exception):
    """A block document file is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class DocumentFile:
    """One validated YAML block document.

    Attributes:
        path: the file.
        kind: the block class of its directory.
        name: the document name (the file name without `.yaml`).
        data: the file's mapping, as written.
        block: the validated block (references replaced by the documents they name).
        refs: field -> name of the referenced document (ComponentSpec only).
    """

    path: Path
    kind: type[Block]
    name: str
    data: dict[str, Any]
    block: Block
    refs: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind.get_block_type_slug()}/{self.name}"


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        got = f" (got {err['input']!r})" if where and not isinstance(err["input"], dict) else ""
        parts.append(f"{where}: {msg}{got}" if where else msg)
    return "; ".join(parts)


def _parse(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentError(f"{path}: invalid YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise DocumentError(f"{path}: expected a mapping of field: value (got {data!r})")
    return data


def _validate(path: Path, kind: type[Block], data: dict[str, Any]) -> Block:
    unknown = sorted(str(k) for k in data if k not in kind.model_fields)
    if unknown:
        fields = ", ".join(kind.model_fields)
        raise DocumentError(f"{path}: unknown field {unknown[0]!r} (fields: {fields})")
    try:
        return kind.model_validate(dict(data))
    except ValidationError as exc:
        raise DocumentError(f"{path}: {_validation_message(exc)}") from None


def load_documents(path: Path, lookup: Lookup | None = None) -> list[DocumentFile]:
    """Parse and validate every `<path>/<block-type-slug>/<name>.yaml`, writing nothing.

    Args:
        path: the directory of block documents.
        lookup: finds a referenced document that is not among the files (`None`: it must be).

    Returns:
        The documents, policies before the component specs that may reference them.

    Raises:
        DocumentError: the first unusable file, named with its field.
    """
    if not path.is_dir():
        raise DocumentError(f"{path}: not a directory of block documents")
    files: list[tuple[Path, type[Block]]] = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        kind = BLOCK_TYPES.get(sub.name)
        if kind is None:
            raise DocumentError(
                f"{sub}: unknown block type directory (expected {', '.join(BLOCK_TYPES)})"
            )
        files += [(f, kind) for f in sorted(sub.iterdir()) if f.suffix in (".yaml", ".yml")]
    seen: dict[tuple[type[Block], str], DocumentFile] = {}
    paths: dict[tuple[type[Block], str], Path] = {}
    specs = []
    for file, kind in files:
        if not _NAME.match(file.stem):
            raise DocumentError(
                f"{file}: a document name uses lowercase letters, digits and dashes only"
            )
        if (kind, file.stem) in paths:
            raise DocumentError(f"{file}: duplicates {paths[kind, file.stem]}")
        paths[kind, file.stem] = file
        data = _parse(file)
        if kind is ComponentSpec:
            specs.append((file, data))
            continue
        seen[kind, file.stem] = DocumentFile(
            file, kind, file.stem, data, _validate(file, kind, data)
        )
    out = list(seen.values())
    for file, data in specs:
        resolved, refs = dict(data), {}
        for fname, ref_kind in _REFERENCES.items():
            ref = data.get(fname)
            if not isinstance(ref, str):
                continue
            target = seen.get((ref_kind, ref))
            block = target.block if target else lookup(ref_kind, ref) if lookup else None
            if block is None:
                slug = ref_kind.get_block_type_slug()
                raise DocumentError(f"{file}: {fname}: no {slug} document named {ref!r}")
            resolved[fname], refs[fname] = block, ref
        spec = _validate(file, ComponentSpec, resolved)
        if spec.component != file.stem:  # the name resolve_policy and the task tags use
            raise DocumentError(
                f"{file}: component: must equal the document name {file.stem!r} "
                f"(got {spec.component!r})"
            )
        out.append(DocumentFile(file, ComponentSpec, file.stem, data, spec, refs))
    return out


def _normalized(value: Any) -> Any:
    """Block data without the keys `model_dump` adds to nested blocks (slug, `_block_*` ids)."""
    if isinstance(value, dict):
        return {
            k: _normalized(v)
            for k, v in value.items()
            if k != "block_type_slug" and not k.startswith("_")
        }
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _unchanged(existing: Any, doc: DocumentFile, block: Block) -> bool:
    wanted = block.model_dump(mode="json", include=set(doc.kind.model_fields))
    if _normalized(existing.data) != _normalized(wanted):
        return False
    refs = existing.block_document_references or {}
    for fname, ref in doc.refs.items():
        if refs.get(fname, {}).get("block_document", {}).get("name") != ref:
            return False
    return all(fname in doc.refs for fname in refs)


def _server_lookup(kind: type[Block], name: str) -> Block | None:
    try:
        return kind.load(name)
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            msg = _validation_message(exc)
            raise DocumentError(f"{kind.get_block_type_slug()}/{name} is invalid: {msg}") from None
        return None


def apply_documents(docs: Sequence[DocumentFile], echo: Callable[[str], None] = print) -> int:
    """Register the block types, then create or update each document (policies first).

    Returns:
        How many documents were created or updated.
    """
    for kind in BLOCK_TYPES.values():
        kind.register_type_and_schema()
    written = 0
    with get_client(sync_client=True) as client:
        for doc in docs:
            block = doc.block
            if doc.refs:  # reload the (now saved) targets so they are saved as references
                loaded = {f: _REFERENCES[f].load(ref) for f, ref in doc.refs.items()}
                block = doc.kind.model_validate({**doc.data, **loaded})
            try:
                existing = client.read_block_document_by_name(
                    doc.name, doc.kind.get_block_type_slug()
                )
            except ObjectNotFound:
                existing = None
            if existing is not None and _unchanged(existing, doc, block):
                echo(f"{doc.label}: unchanged")
                continue
            block.save(doc.name, overwrite=True)
            written += 1
            echo(f"{doc.label}: {'created' if existing is None else 'updated'}")
    return written


app = cyclopts.App(
    name="prefect-ft", help="Fault tolerance for Prefect 3 pipelines.", version=__version__
)
blocks_app = cyclopts.App(name="blocks", help="Register block types and apply block documents.")
app.command(blocks_app)
app.command(breakers_app)
app.command(deadletters_app)
app.command(alerts_app)
app.command(status, name="status")
app.command(emergency_stop, name="emergency-stop")
app.command(emergency_clear, name="emergency-clear")
app.command(detect, name="detect")
app.command(replay, name="replay")
app.command(demo, name="demo")
app.command("prefect_ft.cli.ops:ops_server", name="ops-server")
app.command("prefect_ft.cli.serve:serve", name="serve")


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


@blocks_app.command(name="apply")
def blocks_apply(path: Path = Path("blocks")) -> int:
    """Create or update block documents from `<path>/<block-type-slug>/<name>.yaml`.

    Args:
        path: directory holding one sub-directory per block type.
    """
    try:
        docs = load_documents(path, lookup=_server_lookup)
    except DocumentError as exc:
        return _fail(f"{exc}; nothing applied")
    except Exception as exc:  # the API, while resolving references
        return _fail(f"cannot read referenced documents: {type(exc).__name__}: {exc}")
    try:
        written = apply_documents(docs)
    except Exception as exc:  # documents reported above were written; the rest were not
        api = PREFECT_API_URL.value() or "the ephemeral Prefect API"
        return _fail(f"applying documents to {api} failed: {type(exc).__name__}: {exc}")
    print(f"{len(docs)} documents: {written} written, {len(docs) - written} unchanged")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Run `prefect-ft` (the console script); exits with the command's status."""
    app(argv)
