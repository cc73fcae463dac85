"""Start a stack process early: import its heavy modules now, run it once what it needs is up.

    python -m prefect_ft.demo.scale_launch [--import MOD]... [--wait-file F] [--wait-url U]
        [--timeout S] -- MODULE [ARGS...]

`ScaleStack` spawns the Prefect server, the workers and `prefect deploy` this way: the server
imports its app (7-8 CPU-seconds, 40 s on a loaded machine) while PostgreSQL starts, and the
workers and the deploy import Prefect while the server starts, instead of one after the other.
Once `--wait-file` exists and `--wait-url` answers 200, `MODULE` runs as `python -m MODULE
ARGS...` would (`module:function` calls that function), in this process (so the stack's process handle is the real process). Gives up
with exit code 3 after `--timeout` seconds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import runpy
import sys
import time

__all__ = ["main"]


def _ready(wait_file: str | None, wait_url: str | None) -> bool:
    if wait_file and not os.path.exists(wait_file):
        return False
    if wait_url:
        import httpx

        try:
            return httpx.get(wait_url, timeout=10).status_code == 200
        except httpx.HTTPError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        print("scale_launch: give the module to run after --", file=sys.stderr)
        return 2
    cut = args.index("--")
    parser = argparse.ArgumentParser(prog="scale_launch")
    parser.add_argument("--import", dest="imports", action="append", default=[])
    parser.add_argument("--wait-file")
    parser.add_argument("--wait-url")
    parser.add_argument("--timeout", type=float, default=600.0)
    opts = parser.parse_args(args[:cut])
    module, rest = args[cut + 1], args[cut + 2 :]
    for name in opts.imports:  # the slow part, while what we wait for comes up
        importlib.import_module(name)
    deadline = time.monotonic() + opts.timeout
    while not _ready(opts.wait_file, opts.wait_url):
        if time.monotonic() > deadline:
            print(f"scale_launch: {opts.wait_file or opts.wait_url} not ready within "
                  f"{opts.timeout} s", file=sys.stderr, flush=True)  # fmt: skip
            return 3
        time.sleep(0.25)
    sys.argv = [module, *rest]
    if ":" in module:  # `package.module:function`, for a CLI without a __main__ module
        name, _, attr = module.partition(":")
        out = getattr(importlib.import_module(name), attr)()
        return out if isinstance(out, int) else 0
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
