"""`prefect_ft.demo.scale_launch`: a stack process imports early and runs once what it needs is up."""

from __future__ import annotations

import socket
import sys
import threading
import time

from prefect_ft.demo import scale_launch

seen: list[list[str]] = []


def record() -> int:
    seen.append(list(sys.argv))
    return 0


def test_runs_the_command_once_the_file_exists(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["pytest"])
    seen.clear()
    ready = tmp_path / "pg.ready"
    threading.Timer(0.5, ready.touch).start()
    t0 = time.monotonic()
    code = scale_launch.main(["--import", "json", "--wait-file", str(ready), "--timeout", "60",
                              "--", f"{__name__}:record", "server", "start"])  # fmt: skip
    assert code == 0 and time.monotonic() - t0 >= 0.4
    assert seen == [[f"{__name__}:record", "server", "start"]]


def test_gives_up_when_what_it_waits_for_never_comes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["pytest"])
    seen.clear()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api/health"
    assert scale_launch.main(["--wait-url", url, "--timeout", "0.5", "--", f"{__name__}:record"]) == 3  # fmt: skip
    assert scale_launch.main(["--wait-file", str(tmp_path / "never"), "--timeout", "0.3",
                              "--", f"{__name__}:record"]) == 3  # fmt: skip
    assert seen == []


def test_the_command_comes_after_a_separator() -> None:
    assert scale_launch.main(["--wait-file", "x"]) == 2
