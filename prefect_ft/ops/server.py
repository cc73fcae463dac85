"""The ops HTTP server: `GET /health` (JSON) and `GET /metrics` (Prometheus text).

`start_ops_server(port)` serves both on a daemon thread and returns a handle with `.url` and
`.stop()`; `prefect-ft ops-server` runs it alone and `prefect-ft serve` beside its flows.
`/health` answers 200 while the system is Healthy, Warning or Degraded and 503 when it is
Critical, so a load balancer or an uptime check can use the status code alone; the body always
holds the system level, its reasons and every component's level and reasons. Each request runs a
health check, so a change is announced (`prefect-ft.health.changed`) when it is first seen; a
background check every `check_seconds` announces changes nobody asked about.

A port in use raises `OpsServerError` with one line naming it (the CLI prints that line).
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prefect_ft.core.health import Level
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.ops import metrics
from prefect_ft.ops.health import HealthMonitor
from prefect_ft.stores import BreakerStore

__all__ = ["OpsServer", "OpsServerError", "start_ops_server"]

log = logging.getLogger("prefect_ft.ops.server")


class OpsServerError(ConfigurationError):
    """The ops server cannot start (e.g. its port is in use)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path == "/metrics":
                self.server.monitor.check()  # health gauges current in the same scrape
                self._send(200, metrics.CONTENT_TYPE, metrics.exposition())
            elif path == "/health":
                health = self.server.monitor.check()
                body = json.dumps(health.to_dict(), indent=2).encode()
                code = 503 if health.level == Level.CRITICAL else 200
                self._send(code, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found: try /health or /metrics\n")
        except Exception as exc:  # one bad request must not take the server down
            log.exception("ops server: %s failed", path)
            self._send(500, "text/plain", f"{type(exc).__name__}: {exc}\n".encode())

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ops server: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    monitor: HealthMonitor


class OpsServer:
    """A running ops server; `stop()` closes it (idempotent)."""

    def __init__(self, httpd: _Server, check_seconds: float | None) -> None:
        self._httpd = httpd
        self.host, self.port = httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        self._checker: threading.Thread | None = None
        if check_seconds:
            self._checker = threading.Thread(target=self._check, args=(check_seconds,), daemon=True)
            self._checker.start()

    @property
    def monitor(self) -> HealthMonitor:
        return self._httpd.monitor

    def _check(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            try:
                self.monitor.check()
            except Exception:
                log.debug("ops server: background health check failed", exc_info=True)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        if self._checker is not None:
            self._checker.join(5)

    def __enter__(self) -> OpsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_ops_server(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    store: BreakerStore | str | None = "default",
    monitor: HealthMonitor | None = None,
    check_seconds: float | None = 5.0,
) -> OpsServer:
    """Serve `/health` and `/metrics` on `host:port` (0: a free port) from a daemon thread.

    Args:
        store: where the fleet's breakers and the notes are read ("default": the shared store
            of `PREFECT_FT_STORE_URL`; None: this process's breakers only).
        monitor: the health monitor to use (default: one over `store`).
        check_seconds: how often to check health in the background (None: only on requests).

    Raises:
        OpsServerError: `port` is out of range or in use.
    """
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise OpsServerError(f"port must be an integer in [0, 65535] (got {port!r})")
    if store is not None and not hasattr(store, "read"):
        from prefect_ft.stores import shared_store

        store = shared_store(None if store == "default" else store)  # type: ignore[arg-type]
    metrics.install()
    metrics.set_store_view(store)  # type: ignore[arg-type]
    try:
        httpd = _Server((host, port), _Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OpsServerError(f"port {port} on {host} is already in use") from None
        raise OpsServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    httpd.monitor = monitor or HealthMonitor(store)  # type: ignore[arg-type]
    return OpsServer(httpd, check_seconds)
