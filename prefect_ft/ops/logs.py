"""Structured logs: structlog, configured once, through the standard library.

`get_logger(name)` returns a structlog logger whose lines go to the standard-library logger
`prefect_ft.<name>`; one handler on `prefect_ft` renders every line, ours and the plain
`logging` lines of the other prefect_ft modules alike, with structlog's `ProcessorFormatter`:
JSON when `PREFECT_FT_LOG_FORMAT=json`, a readable console line otherwise (`console`, the
default). Any other value is refused with one line naming the allowed values.

Every line carries the correlation ids `flow_run_id`, `task_run_id` (from Prefect's run context,
when Prefect is loaded), `breaker` and `component` (null when unknown) and, inside
`bind_ids(recovery_id=...)`, `recovery_id`. Bind ids for a block with `bind_ids(...)`
(contextvars: they follow threads started with a copied context, and asyncio tasks).

In the Prefect UI: with `PREFECT_LOGGING_EXTRA_LOGGERS=prefect_ft`, Prefect attaches its API
log handler to the `prefect_ft` logger, so lines logged inside a run appear in that run's logs
(sent in batches every 2 s; lines outside a run are dropped). The message it sends is the
event followed by the ids as `key=value`, so they are searchable there too. Prefect's own console
handler is taken off `prefect_ft` when we configure, so a line is not printed twice.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

from prefect_ft.exceptions import ConfigurationError
from prefect_ft.settings import log_format

__all__ = ["CORRELATION_IDS", "bind_ids", "configure_logging", "get_logger"]

CORRELATION_IDS = ("flow_run_id", "task_run_id", "breaker", "component")
ROOT = "prefect_ft"
_lock = threading.Lock()
_configured: str | None = None
_handler: logging.Handler | None = None
_META = {"event", "level", "timestamp", "logger", "_record", "_from_structlog", "_ft"}


def _run_ids() -> tuple[str | None, str | None]:
    # only when Prefect is already loaded: a plain script or a pool child must not import it
    ctx = sys.modules.get("prefect.context")
    if ctx is None:
        return None, None
    try:
        task = ctx.TaskRunContext.get()
        if task is not None:
            return str(task.task_run.flow_run_id), str(task.task_run.id)
        flow = ctx.FlowRunContext.get()
        if flow is not None and flow.flow_run is not None:
            return str(flow.flow_run.id), None
    except Exception:  # a half-built context must not cost a log line
        pass
    return None, None


def add_correlation_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: the run's ids and the bound ids on every line (null when unknown)."""
    flow_run_id, task_run_id = _run_ids()
    event_dict.setdefault("flow_run_id", flow_run_id)
    event_dict.setdefault("task_run_id", task_run_id)
    event_dict.setdefault("breaker", None)
    event_dict.setdefault("component", None)
    return event_dict


def _to_stdlib(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Final structlog processor: hand the line to `logging` with a readable message (what
    Prefect's API handler sends to the UI) and the structured dict beside it."""
    event = str(event_dict.get("event", ""))
    ids = " ".join(f"{k}={v}" for k, v in event_dict.items() if k not in _META and v is not None)
    return (f"{event} {ids}" if ids else event,), {"extra": {"_ft": dict(event_dict)}}


def _from_record(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Formatter pre-chain: a line from `get_logger` brings its own dict; a plain `logging`
    line gets the ids of the context it was logged in."""
    record = event_dict.get("_record")
    ours = getattr(record, "_ft", None)
    if ours is not None:
        return {**ours, **{k: event_dict[k] for k in ("_record", "_from_structlog")}}
    event_dict = structlog.contextvars.merge_contextvars(_, __, event_dict)
    return add_correlation_ids(_, __, event_dict)


def _formatter(fmt: str) -> logging.Formatter:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _from_record,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


def configure_logging(fmt: str | None = None, *, level: int = logging.INFO) -> str:
    """Configure structlog and the `prefect_ft` logger (idempotent per format).

    Args:
        fmt: `json` or `console`; default `PREFECT_FT_LOG_FORMAT`, else `console`.

    Returns:
        The format in use.

    Raises:
        ConfigurationError: an unknown format (the message names the allowed values).
    """
    global _configured, _handler
    fmt = log_format(fmt)
    with _lock:
        if _configured == fmt:
            return fmt
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                add_correlation_ids,
                _to_stdlib,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
        root = logging.getLogger(ROOT)
        if _handler is not None:
            root.removeHandler(_handler)
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(_formatter(fmt))
        _handler.set_name("prefect-ft")
        for h in list(root.handlers):  # Prefect's console copy; its API handler stays
            if type(h).__name__ == "PrefectConsoleHandler":
                root.removeHandler(h)
        root.addHandler(_handler)
        root.setLevel(min(root.level or level, level))
        root.propagate = False  # our handler renders it; the root's would print it again
        _configured = fmt
    return fmt


def get_logger(name: str = "") -> Any:
    """A structlog logger writing to `prefect_ft.<name>` (configures logging on first use).

    An unusable `PREFECT_FT_LOG_FORMAT` is reported once on stderr and the console format is
    used: a log setting must not stop a task.
    """
    if _configured is None:
        try:
            configure_logging()
        except ConfigurationError as exc:
            print(f"prefect-ft: error: {exc}; using console", file=sys.stderr)
            configure_logging("console")
    return structlog.get_logger(f"{ROOT}.{name}" if name else ROOT)


@contextlib.contextmanager
def bind_ids(**ids: Any) -> Iterator[None]:
    """Add ids (`breaker`, `component`, `recovery_id`, ...) to every line logged in the block."""
    with structlog.contextvars.bound_contextvars(**ids):
        yield
