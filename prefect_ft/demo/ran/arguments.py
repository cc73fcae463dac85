"""The command line of `python -m prefect_ft.demo` (`make demo`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["RECOVERY_MODES", "demo_parser"]

RECOVERY_MODES = ("both", "served", "in-process", "none")


def demo_parser(description: str | None, warmup_docs: int) -> argparse.ArgumentParser:
    """The demo's options (checked further by `demo.main` before anything starts)."""
    parser = argparse.ArgumentParser(prog="python -m prefect_ft.demo", description=description)
    parser.add_argument("--faults", help="YAML fault schedule (default: the scripted one)")
    parser.add_argument(
        "--corpus", help="directory of *.md documents (default: the bundled corpus)"
    )
    parser.add_argument("--docs", type=int, default=None, help="use only the first N documents")
    parser.add_argument("--compress", type=float, default=1.0, help="multiply fault times by this")
    parser.add_argument(
        "--deadline", type=float, default=200.0, help="seconds to drain dead letters"
    )
    parser.add_argument(
        "--home", help="working directory (default: a temporary one, removed after)"
    )
    parser.add_argument(
        "--model-home",
        default=os.environ.get("PREFECT_HOME", str(Path.home() / ".prefect")),
        help="where the model is kept between runs (default: your PREFECT_HOME)",
    )
    parser.add_argument("--train-seconds", type=float, default=None, help="training budget")
    parser.add_argument("--no-detect", action="store_true", help="skip the detection pass")
    parser.add_argument(
        "--warmup-docs",
        type=int,
        default=warmup_docs,
        help="documents of a fault-free pass before the faults (0: none)",
    )
    parser.add_argument(
        "--server-timeout",
        type=float,
        default=180.0,
        help="seconds the Prefect server has to answer",
    )
    parser.add_argument(
        "--model-start-timeout",
        type=float,
        default=180.0,
        help="seconds the model server has to become ready",
    )
    parser.add_argument(
        "--recovery",
        choices=RECOVERY_MODES,
        default="both",
        help="who recovers an opened breaker: the served `recover` deployment and the in-process "
        "listener sharing one lease (both), one of them alone, or none",
    )
    parser.add_argument("--no-recovery", action="store_true", help="the same as --recovery none")
    parser.add_argument(
        "--serve-timeout",
        type=float,
        default=240.0,
        help="seconds `prefect-ft serve` has to start serving before the faults start",
    )
    parser.add_argument("--loopback", action="store_true", help="the older loopback breaker demo")
    return parser
