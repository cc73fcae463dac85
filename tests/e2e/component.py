"""A component process for the end-to-end test: work on one port, the control channel on another.

`python -m tests.e2e.component` prints one JSON line `{"work": URL, "control": URL}` and runs
until stdin closes or SIGTERM. `GET /work?x=N` answers 200 and records N while healthy, 503
while failing; `POST /fail` starts failing (the fault's onset, kept as `fault_at`); `GET
/status` reports the served inputs, the onset and the restarts. Only `/restart` on the control
channel heals it (drain, then restart), the way a wedged process needs a restart, not a reload.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from prefect_ft.recovery.control import serve_control

RESTART_SECONDS = 0.3  # how long the "restart" takes once drained


class Component:
    """The component's state and its `ComponentControl` methods."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failing = False
        self.in_flight = 0
        self.served: list[int] = []
        self.fault_at: float | None = None
        self.healed_at: float | None = None
        self.restarts = 0

    def work(self, x: int) -> bool:
        with self.lock:
            if self.failing:
                return False
            self.in_flight += 1
        try:
            time.sleep(0.005)  # some work
            with self.lock:
                self.served.append(x)
            return True
        finally:
            with self.lock:
                self.in_flight -= 1

    def fail(self) -> None:
        with self.lock:
            self.failing, self.fault_at = True, time.time()

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "failing": self.failing,
                "served": list(self.served),
                "fault_at": self.fault_at,
                "healed_at": self.healed_at,
                "restarts": self.restarts,
            }

    # ComponentControl
    def health(self, deep: bool) -> dict[str, Any]:
        if self.failing:
            return {"healthy": False, "reason": "injected fault: every request fails"}
        return {"healthy": True, "deep": deep}

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + 5.0
        while self.in_flight and time.monotonic() < deadline:  # drain
            time.sleep(0.01)
        time.sleep(RESTART_SECONDS)
        with self.lock:
            self.failing, self.healed_at = False, time.time()
            self.restarts += 1
        return {"ok": True, "restarts": self.restarts}

    def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "note": "reloaded; a wedged process stays wedged"}

    def reset_connections(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    def set_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, **body}


def _handler(component: Component) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/work":
                x = int(parse_qs(url.query)["x"][0])
                ok = component.work(x)
                self._answer(200 if ok else 503, {"x": x, "ok": ok})
            elif url.path == "/status":
                self._answer(200, component.status())
            else:
                self._answer(404, {"ok": False})

        def do_POST(self) -> None:
            if self.path == "/fail":
                component.fail()
                self._answer(200, {"ok": True})
            else:
                self._answer(404, {"ok": False})

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    component = Component()
    work = ThreadingHTTPServer(("127.0.0.1", 0), _handler(component))
    threading.Thread(target=work.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_control(component) as control:
        urls = {"work": f"http://127.0.0.1:{work.server_address[1]}", "control": control.url}
        print(json.dumps(urls), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
    work.shutdown()


if __name__ == "__main__":
    main()
