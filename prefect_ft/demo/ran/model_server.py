"""The model server: our own loopback HTTP process around `ModelService` (not `mlx_lm.server`,
whose /health never touches the model and which cannot reload).

    python -m prefect_ft.demo.ran.model_server --model-dir D --port 0 --ready-file F

writes its URL to F (atomically) once the model is loaded, has generated a token and the socket
accepts connections. Routes: `POST /generate` `{"prompt", "max_tokens"}` -> `{"text"}`; `POST
/faults` (see `server_faults`); `GET /faults`; and the control channel of issue 9 (`GET /health
?deep=1`, `POST /reload`, `/restart`, `/reset-connections`, `/resources`).

`start_model_server(model_dir)` runs it as a child process and returns a `ModelServerProcess`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from prefect_ft.demo.ran.model_service import ModelService, Refused
from prefect_ft.demo.ran.server_faults import DropConnection, InjectedModelError
from prefect_ft.recovery.control import control_app

MAX_PROMPT_CHARS = 4000
MAX_TOKENS = 512


class ModelServerStartError(RuntimeError):
    """The model server process exited or did not become ready in time."""


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ValueError(f"body: not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError("body: must be a JSON object")
    return body


def _generate_args(body: dict[str, Any]) -> tuple[str, int]:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt or len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt: must be a non-empty string of at most {MAX_PROMPT_CHARS} chars")
    max_tokens = body.get("max_tokens", 32)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise ValueError(f"max_tokens: must be an integer in [1, {MAX_TOKENS}]")
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise ValueError(f"max_tokens: must be in [1, {MAX_TOKENS}] (got {max_tokens})")
    return prompt, max_tokens


def build_app(service: ModelService) -> Starlette:
    async def generate(request: Request) -> Any:
        try:
            prompt, max_tokens = _generate_args(await _json(request))
            text = await run_in_threadpool(service.generate, prompt, max_tokens)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except Refused as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        except InjectedModelError as exc:
            return JSONResponse({"error": str(exc)}, status_code=500)
        except DropConnection:
            return _CutResponse()
        except Exception as exc:
            return JSONResponse(
                {"error": f"generation failed: {type(exc).__name__}: {exc}"}, status_code=500
            )
        return JSONResponse({"text": text, "version": service.version})

    async def faults(request: Request) -> Any:
        if request.method == "GET":
            return JSONResponse(
                {"active": service.faults.active_kinds(), "leaked_mb": service.faults.leaked_mb}
            )
        try:
            body = await _json(request)
            if body.get("kind") == "crash":
                # answer first, then die like a crashed process (no cleanup, exit code 70)
                threading.Timer(0.05, os._exit, args=(70,)).start()
                return JSONResponse({"ok": True, "kind": "crash"})
            return JSONResponse(service.faults.set(body))
        except ValueError as exc:
            return JSONResponse({"ok": False, "reason": str(exc)}, status_code=422)

    routes = [
        Route("/generate", generate, methods=["POST"]),
        Route("/faults", faults, methods=["GET", "POST"]),
        Mount("", app=control_app(service)),
    ]
    return Starlette(routes=routes)


class _CutResponse(Response):
    """Starts an answer and cuts the connection mid-body: the client sees a dropped connection
    (httpx: RemoteProtocolError), not an HTTP error. Raising after the start makes Starlette
    re-raise instead of answering 500, and uvicorn then closes the socket."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionAbortedError("injected dropped connection (drop_connections fault)")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    service = ModelService(
        args.model_dir, memory_mb=args.memory_mb, concurrency=args.concurrency
    )  # loads and probes: a bad model exits here with its message
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(service), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started and args.ready_file:
            _write_atomic(Path(args.ready_file), f"http://{args.host}:{port}\n")

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m prefect_ft.demo.ran.model_server")
    parser.add_argument("--model-dir", required=True, help="a model version directory (v<N>)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ready-file", help="the URL is written here once the server is ready")
    parser.add_argument("--memory-mb", type=float, default=None, help="memory budget (MB)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests admitted at once")
    args = parser.parse_args(argv)
    try:
        serve(args)
    except Exception as exc:  # one clear line for the parent, not a traceback
        print(f"model server failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(2)
    # Leave without interpreter teardown: MLX's native threads abort ("terminate called without
    # an active exception") when Python finalises around them after a clean uvicorn shutdown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class ModelServerProcess:
    """A running model server child process: `.url`, `.pid`, `.alive`, a context manager.

    `stop()` asks politely (SIGTERM), then kills, and removes the log directory; `kill()` is a
    crash (SIGKILL, no cleanup; the log stays readable); `respawn()` starts a fresh process on the
    same port, so clients keep their URL (what a supervisor does after a crash).
    """

    def __init__(self, model_dir: Path, port: int, settings: dict[str, Any], tmp: Path) -> None:
        self.model_dir, self.port, self._settings, self._tmp = model_dir, port, settings, tmp
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(t for t in text.strip().splitlines()[-lines:] if t.strip())

    def _spawn(self, timeout: float) -> None:
        ready = self._tmp / "ready"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "prefect_ft.demo.ran.model_server"]
        cmd += ["--model-dir", str(self.model_dir), "--port", str(self.port)]
        cmd += ["--ready-file", str(ready), "--concurrency", str(self._settings["concurrency"])]
        if self._settings["memory_mb"] is not None:
            cmd += ["--memory-mb", str(self._settings["memory_mb"])]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # no downloads
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists():
                self.url = ready.read_text().strip()
                self.port = int(self.url.rsplit(":", 1)[1])  # a respawn reuses this port
                return
            if self.proc.poll() is not None:
                raise ModelServerStartError(
                    f"model server for {self.model_dir} exited with code {self.proc.returncode} "
                    f"before it was ready: {self.log_tail() or 'no output'}"
                )
            time.sleep(0.05)
        self.kill()
        raise ModelServerStartError(
            f"model server for {self.model_dir} was not ready within {timeout:g}s and was "
            f"killed: {self.log_tail() or 'no output'}"
        )

    def respawn(self, model_dir: str | os.PathLike[str] | None = None) -> ModelServerProcess:
        """A fresh process (same port and settings), after killing the old one if it lives."""
        self.kill()
        if model_dir is not None:
            self.model_dir = Path(model_dir)
        self._spawn(self._settings["timeout"])
        return self

    def kill(self) -> None:
        if self.proc is not None:
            if self.alive:
                self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> ModelServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        pid = self.proc.pid if self.proc else None
        return f"ModelServerProcess(pid={pid}, url={self.url!r}, alive={self.alive})"


def start_model_server(
    model_dir: str | os.PathLike[str],
    port: int = 0,
    *,
    timeout: float = 120.0,
    memory_mb: float | None = None,
    concurrency: int = 4,
    log_dir: str | os.PathLike[str] | None = None,
) -> ModelServerProcess:
    """Start the server as a child process and wait until it is ready.

    A server that exits early or is not ready within `timeout` seconds is killed and a
    ModelServerStartError carries its last log lines.
    """
    if not 0 < timeout <= 3600:
        raise ValueError(f"timeout: must be seconds in (0, 3600] (got {timeout!r})")
    tmp = Path(tempfile.mkdtemp(prefix="ran-model-server-", dir=log_dir))
    settings = {"timeout": timeout, "memory_mb": memory_mb, "concurrency": concurrency}
    handle = ModelServerProcess(Path(model_dir), port, settings, tmp)
    try:
        handle._spawn(timeout)
    except BaseException:
        handle.stop()  # no process and no temp directory left behind (the error has the log)
        raise
    return handle


if __name__ == "__main__":
    main()
