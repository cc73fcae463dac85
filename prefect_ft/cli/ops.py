"""`prefect-ft ops-server`: serve `GET /health` and `GET /metrics` on their own.

It reads the fleet from the shared store (every breaker any process built, the notes of
detection and recovery) and runs until interrupted (Ctrl-C or SIGTERM). The first line on
stdout names the URL, so a script can read the port it got with `--port 0`. A user error (port
in use, bad store URL, bad `PREFECT_FT_LOG_FORMAT`) prints one line and exits 1.
"""

from __future__ import annotations

import signal
import sys
import threading

from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError

__all__ = ["ops_server"]

DEFAULT_PORT = 9464  # prometheus-client's customary exporter port; 4200/4201 are Prefect's


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


def ops_server(
    port: int | None = None,
    host: str = "127.0.0.1",
    store: str | None = None,
    check_seconds: float = 5.0,
) -> int:
    """Serve /health (JSON) and /metrics (Prometheus) until interrupted.

    Args:
        port: TCP port (0: any free port); default `PREFECT_FT_METRICS_PORT`, else 9464.
        host: interface to listen on (loopback by default).
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        check_seconds: how often health is checked to announce changes.
    """
    from prefect_ft.ops.logs import configure_logging
    from prefect_ft.ops.server import start_ops_server
    from prefect_ft.settings import metrics_port
    from prefect_ft.stores import shared_store

    try:
        configure_logging()
        if port is None:
            port = metrics_port() or DEFAULT_PORT
        server = start_ops_server(
            port, host, store=shared_store(store), check_seconds=check_seconds
        )
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"prefect-ft ops server on {server.url} (/health, /metrics)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
