"""`make demo`: a real breaker in front of a real loopback server that goes down and comes back.

Until the RAN pipeline lands, this shows what exists: the `ipc` preset (with shortened times so
the demo takes seconds) trips after 8 failures, rejects without touching the server, sends
one probe when the open time ends, ramps traffic back in RECOVERY, and closes. State lives in a
SQLite store, as it would for every process on the machine.
"""

from __future__ import annotations

import http.server
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request

from prefect_ft import CircuitBreaker, CircuitOpenError
from prefect_ft.core.events import BreakerEvent

__all__ = ["main"]


class _Server(http.server.ThreadingHTTPServer):
    healthy = True


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        self.server.hits += 1  # type: ignore[attr-defined]
        code = 200 if self.server.healthy else 503
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"down")

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hits = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/generate"
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)

    def on_event(breaker: CircuitBreaker, e: BreakerEvent) -> None:
        say(f"EVENT prefect-ft.breaker.{e.kind}: {e.from_state} -> {e.to_state} ({e.reason})")

    with tempfile.TemporaryDirectory() as home:
        breaker = CircuitBreaker.from_preset(
            "ipc",
            store=f"sqlite:///{home}/prefect-ft.db",
            open_seconds=1.5,
            max_open_seconds=15,
            recovery_seconds=2.0,
            recovery_minimum_calls=3,
            listeners=[on_event],
        )
        say(f"{breaker} in front of {url}")

        @breaker
        def generate() -> str:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()

        tally: dict[str, int] = {}

        def step(label: str, n: int, pause: float) -> None:
            for _ in range(n):
                try:
                    generate()
                    kind = "ok"
                except CircuitOpenError:
                    kind = "rejected"
                except urllib.error.HTTPError as exc:
                    kind = f"failed {exc.code}"
                tally[kind] = tally.get(kind, 0) + 1
                time.sleep(pause)
            hits = server.hits  # type: ignore[attr-defined]
            say(
                f"{label}: {dict(sorted(tally.items()))}; server hits so far {hits}; state {breaker.state}"
            )
            tally.clear()

        step("healthy traffic", 10, 0.01)
        server.healthy = False
        say("server goes down (503)")
        step("traffic while down", 30, 0.01)
        step("still down after the open time: one probe", 25, 0.1)
        server.healthy = True
        say("server is back")
        step("traffic after recovery", 60, 0.08)
        say(f"final state {breaker.state}; counts {breaker.counts}")

        # Part 2: the same failure inside Prefect flows, on an embedded server (SQLite).
        os.environ["PREFECT_HOME"] = f"{home}/prefect"
        os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{home}/prefect/prefect-ft.db"
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # the demo prints its own lines
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        # Prefect's default of 20 s is too short on a loaded 2-core machine (it timed out at load 8)
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        os.environ.pop("PREFECT_API_URL", None)

        def set_healthy(ok: bool) -> None:
            server.healthy = ok

        from prefect_ft.demo.flows import run

        say("starting an embedded Prefect server (SQLite) for part 2")
        run(url, set_healthy, say)
    server.shutdown()


if __name__ == "__main__":
    main()
