"""Start, stop and restart a real `redis-server` for tests.

Outage tests kill Redis mid-run and bring it back on the same port, so a server is an object
that keeps its port across restarts. Readiness is checked with a raw RESP `PING` so that this
module needs nothing but the standard library.

Examples:
    ```python
    server = RedisServer(tmp_path).start()
    store = RedisBreakerStore(server.url)
    server.stop()      # store calls now raise StoreUnavailableError
    server.start()     # same port; the same store object works again
    server.stop()
    ```
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer", "find_redis_server", "free_port", "ping"]

_LIVE: set[RedisServer] = set()


def find_redis_server() -> str | None:
    """Path of the `redis-server` binary, or None when it is not installed."""
    return shutil.which("redis-server")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(port: int, timeout: float = 0.2) -> bool:
    """True when a Redis server answers PING on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` process on a fixed loopback port, without persistence.

    Args:
        workdir: where the server runs and logs (`redis.log`); a temporary folder by default.
        port: the port to use; a free one by default. It stays the same across restarts.
        binary: the `redis-server` executable; found on PATH by default.

    Raises:
        FileNotFoundError: no `redis-server` binary.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        self.binary = binary or find_redis_server()
        if not self.binary:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="prefect-ft-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the process is alive (it may be paused)."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING.

        A port picked by `free_port` can be taken by someone else before Redis binds it; then
        another free port is tried. A fixed port is never changed.

        Raises:
            RuntimeError: the server exited or did not answer within `timeout`.
        """
        if self.running:
            return self
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except RuntimeError:
                if self._fixed_port or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> RedisServer:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 (the child keeps it)
        with log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", str(self.workdir)],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"redis-server exited on port {self.port}: {self.log_tail()}")
            if ping(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING on port {self.port} in {timeout} s")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s) and wait until it is gone."""
        proc, self.process = self.process, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process is not None:
            self.process.kill()
        self.stop()

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung server)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server log, for error messages."""
        try:
            text = (self.workdir / "redis.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    # A crashed or interrupted test run must not leave servers behind.
    for server in list(_LIVE):
        server.stop()
