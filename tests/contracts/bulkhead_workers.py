"""Code that runs in child processes of the shared-bulkhead tests (importable under 'spawn').

Imported as the top-level module `bulkhead_workers`, because tests/contracts has no
`__init__.py`; a spawned child finds it through the parent's `sys.path`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from prefect_ft.bulkhead.permits import Bulkhead
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.exceptions import BulkheadFullError

__all__ = ["hold_forever", "hold_long", "hold_many", "log_line"]


def log_line(path: str, text: str) -> None:
    """Append one line with O_APPEND: a single write, never interleaved with other processes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text}\n".encode())
    finally:
        os.close(fd)


def _bulkhead(url: str, name: str, **kw: object) -> Bulkhead:
    return Bulkhead(BulkheadConfig(name, scope="shared", **kw), store=url)  # type: ignore[arg-type]


def hold_many(
    url: str, name: str, log_path: str, start_at: float, calls: int, hold_s: float, cfg: dict
) -> dict[str, int]:
    """Take the permit `calls` times, logging `start`/`end` wall-clock times while it is held.

    A permit had while the store did not answer (a Redis timeout on a loaded machine) holds no
    lease: its lines say `local`, and `tally["local"]` counts them.
    """
    bulkhead = _bulkhead(url, name, **cfg)
    while time.time() < start_at:  # start together, so the processes really compete
        time.sleep(0.001)
    tally = {"held": 0, "local": 0, "full": 0, "other": 0}
    for _ in range(calls):
        try:
            with bulkhead.permit():
                kind = "leased" if bulkhead.store_available else "local"
                log_line(log_path, f"{time.time():.6f} start {kind}")
                time.sleep(hold_s)
                log_line(log_path, f"{time.time():.6f} end {kind}")
            tally["held"] += 1
            tally["local"] += kind == "local"
        except BulkheadFullError:
            tally["full"] += 1
        except Exception:  # a store error reaching the caller would land here
            tally["other"] += 1
    return tally


def hold_forever(url: str, name: str, marker: str, cfg: dict) -> None:
    """Take the permit and hang inside it until killed.

    `marker` gets the times just before asking and just after getting it: the lease was
    written in between.
    """
    bulkhead = _bulkhead(url, name, **cfg)
    asked = time.time()
    with bulkhead.permit():
        # written whole, then renamed: the parent polls for the file and reads it at once
        Path(f"{marker}.tmp").write_text(f"{asked:.6f} {time.time():.6f}")
        os.replace(f"{marker}.tmp", marker)
        time.sleep(600)


def hold_long(url: str, name: str, marker: str, hold_s: float, cfg: dict) -> None:
    """Hold the permit for `hold_s` (several lease lengths); `marker` gets the start and end."""
    with _bulkhead(url, name, **cfg).permit():
        log_line(marker, f"{time.time():.6f}")
        time.sleep(hold_s)
        log_line(marker, f"{time.time():.6f}")  # written before the release
