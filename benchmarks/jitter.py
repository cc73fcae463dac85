"""Re-run the AWS "Exponential Backoff And Jitter" OCC simulation with our backoff strategies.

Model (as in aws-samples/aws-arch-backoff-simulator, used for Brooker's 2015 AWS Architecture
Blog post): one server holds a single row with a version number. Each of N clients wants to
write the row exactly once. A client reads the version, then sends a write carrying that
version; the server accepts the write only if the version is still current (optimistic
concurrency control), and bumps it. A client whose write fails backs off, re-reads and
retries. Every message hop costs |N(10, 2)| ms of network delay. Backoff uses B = 5 ms and
C = 2000 ms. As in the AWS sample, the k-th retry (k = 1, 2, ...) uses exponent k, i.e. the
first retry of the exponential strategies waits up to 2 * B; pass ``--first-exponent 0`` for
our 0-based convention (first retry up to B).

The simulation is discrete-event (a ``heapq`` ordered by simulated time); nothing sleeps.
Completion time is the simulated time at which the last client learns its write succeeded.
"Calls" counts write requests reaching the server (successful and failed), as in the sample.

The backoff delays come from ``prefect_ft.core.backoff`` (the strategies are configured in
seconds and converted to ms here); "no backoff" retries immediately after the network hop.

Usage:
    python benchmarks/jitter.py                       # 100 clients, 100 trials, seed 1
    python benchmarks/jitter.py --clients 10 50 100 --trials 20 --seed 7 --jobs 2
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect_ft.core.backoff import (
    BackoffStrategy,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
)

BASE_MS = 5.0
CAP_MS = 2000.0
NET_MEAN_MS = 10.0
NET_SD_MS = 2.0

# Reference means at 100 clients from an independent re-implementation (ms, write calls).
REFERENCE_100 = {
    "none": (2030.0, 2428.0),
    "exponential": (63144.0, 1859.0),
    "equal": (6746.0, 812.0),
    "full": (4884.0, 796.0),
    "decorrelated": (4454.0, 1000.0),
}


def _strategies() -> dict[str, Callable[[], BackoffStrategy | None]]:
    base_s, cap_s = BASE_MS / 1000.0, CAP_MS / 1000.0
    return {
        "none": lambda: None,
        "exponential": lambda: ExponentialBackoff(base_seconds=base_s, cap_seconds=cap_s),
        "equal": lambda: EqualJitter(base_seconds=base_s, cap_seconds=cap_s),
        "full": lambda: FullJitter(base_seconds=base_s, cap_seconds=cap_s),
        "decorrelated": lambda: DecorrelatedJitter(base_seconds=base_s, cap_seconds=cap_s),
    }


STRATEGY_NAMES = tuple(_strategies())
LABELS = {
    "none": "no backoff",
    "exponential": "exponential",
    "equal": "equal jitter",
    "full": "full jitter",
    "decorrelated": "decorrelated jitter",
}

# Event kinds.
_READ_AT_SERVER, _READ_REPLY, _WRITE_AT_SERVER, _WRITE_REPLY = range(4)


def simulate(
    n_clients: int,
    strategy: BackoffStrategy | None,
    rng: random.Random,
    first_exponent: int = 1,
) -> tuple[float, int]:
    """Run one trial; return (completion time in ms, number of write calls)."""
    gauss = rng.gauss
    draw = rng.random
    queue: list[tuple[float, int, int, int, int]] = []  # (time, seq, kind, client, payload)
    seq = 0
    for client in range(n_clients):
        queue.append((abs(gauss(NET_MEAN_MS, NET_SD_MS)), seq, _READ_AT_SERVER, client, 0))
        seq += 1
    heapq.heapify(queue)
    failures = [0] * n_clients
    previous_s: list[float | None] = [None] * n_clients
    version = 0
    calls = 0
    now = 0.0
    pop, push = heapq.heappop, heapq.heappush
    while queue:
        t, _, kind, client, payload = pop(queue)
        assert t >= now, "simulated time went backwards"
        now = t
        nxt = now + abs(gauss(NET_MEAN_MS, NET_SD_MS))
        if kind == _READ_AT_SERVER:
            push(queue, (nxt, seq, _READ_REPLY, client, version))
        elif kind == _READ_REPLY:
            push(queue, (nxt, seq, _WRITE_AT_SERVER, client, payload))
        elif kind == _WRITE_AT_SERVER:
            calls += 1
            ok = payload == version
            if ok:
                version += 1
            push(queue, (nxt, seq, _WRITE_REPLY, client, int(ok)))
        else:  # _WRITE_REPLY
            if payload:
                continue  # this client is done
            failures[client] += 1
            if strategy is not None:
                attempt = failures[client] - 1 + first_exponent
                delay_s = strategy.delay(attempt, draw(), previous_s[client])
                previous_s[client] = delay_s
                nxt += delay_s * 1000.0
            push(queue, (nxt, seq, _READ_AT_SERVER, client, 0))
        seq += 1
    return now, calls


@dataclass(frozen=True, slots=True)
class Cell:
    clients: int
    strategy: str
    times_ms: tuple[float, ...]
    calls: tuple[int, ...]

    @property
    def mean_ms(self) -> float:
        return math.fsum(self.times_ms) / len(self.times_ms)

    @property
    def mean_calls(self) -> float:
        return sum(self.calls) / len(self.calls)

    @staticmethod
    def _ci95(values: Sequence[float]) -> float:
        n = len(values)
        if n < 2:
            return math.nan
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        return 1.96 * math.sqrt(var / n)

    @property
    def ci_ms(self) -> float:
        return self._ci95(self.times_ms)

    @property
    def ci_calls(self) -> float:
        return self._ci95([float(c) for c in self.calls])


def run_cell(clients: int, name: str, trials: int, seed: int, first_exponent: int) -> Cell:
    """Run ``trials`` independent trials of one (clients, strategy) cell."""
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and processes.
    rng = random.Random(f"jitter/{seed}/{clients}/{name}")
    strategy = _strategies()[name]()
    times: list[float] = []
    calls: list[int] = []
    for _ in range(trials):
        t, c = simulate(clients, strategy, rng, first_exponent)
        times.append(t)
        calls.append(c)
    return Cell(clients, name, tuple(times), tuple(calls))


def _client_list(values: Sequence[str]) -> list[int]:
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            n = int(part)
            if n < 1:
                raise argparse.ArgumentTypeError(f"--clients values must be >= 1 (got {n})")
            out.append(n)
    if not out:
        raise argparse.ArgumentTypeError("--clients needs at least one value")
    return out


def _fmt(x: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.{digits}f}"


def render(cells: dict[tuple[int, str], Cell], clients_list: list[int], trials: int) -> str:
    lines: list[str] = []
    for clients in clients_list:
        full = cells[(clients, "full")]
        lines.append(f"### {clients} clients, {trials} trials each")
        lines.append("")
        header = (
            "| strategy | mean completion (ms) | ±95% CI | mean write calls | ±95% CI "
            "| time / full | calls / full |"
        )
        if clients == 100:
            header += " reference ms / calls |"
        lines.append(header)
        lines.append(_sep(header))
        for name in STRATEGY_NAMES:
            cell = cells[(clients, name)]
            row = (
                f"| {LABELS[name]} | {_fmt(cell.mean_ms)} | {_fmt(cell.ci_ms)} "
                f"| {_fmt(cell.mean_calls)} | {_fmt(cell.ci_calls)} "
                f"| {cell.mean_ms / full.mean_ms:.2f} | {cell.mean_calls / full.mean_calls:.2f} |"
            )
            if clients == 100:
                ref_ms, ref_calls = REFERENCE_100[name]
                row += f" {ref_ms:,.0f} / {ref_calls:,.0f} |"
            lines.append(row)
        least = min(STRATEGY_NAMES, key=lambda n: cells[(clients, n)].mean_calls)
        lines.append("")
        lines.append(f"Fewest write calls: {LABELS[least]}.")
        lines.append("")
    return "\n".join(lines)


def _sep(header: str) -> str:
    columns = header.count("|") - 1
    return "|" + "---|" * columns


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients",
        nargs="+",
        default=["100"],
        metavar="N",
        help="client counts to simulate, space or comma separated (default: 100)",
    )
    parser.add_argument("--trials", type=int, default=100, help="trials per cell (default: 100)")
    parser.add_argument("--seed", type=int, default=1, help="base seed (default: 1)")
    parser.add_argument(
        "--first-exponent",
        type=int,
        choices=(0, 1),
        default=1,
        help="exponent used for the first retry: 1 as in the AWS sample (default), 0 for "
        "0-based attempts",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes (default: 1; results identical)"
    )
    args = parser.parse_args(argv)
    try:
        clients_list = _client_list(args.clients)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    if args.trials < 1:
        parser.error(f"--trials must be >= 1 (got {args.trials})")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1 (got {args.jobs})")

    python = os.path.relpath(sys.executable)
    if python.startswith(".."):
        python = sys.executable
    invoked = shlex.join([python, *(sys.argv if argv is None else ["benchmarks/jitter.py", *argv])])
    effective = (
        f"{python} benchmarks/jitter.py --clients {' '.join(map(str, clients_list))} "
        f"--trials {args.trials} --seed {args.seed} --first-exponent {args.first_exponent} "
        f"--jobs {args.jobs}"
    )
    print(f"command: {invoked}")
    print(f"effective: {effective}")
    print(
        f"date (UTC): {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')}; "
        f"python {platform.python_version()} on {platform.machine()}"
    )
    print(
        f"model: B={BASE_MS:g} ms, C={CAP_MS:g} ms, network |N({NET_MEAN_MS:g}, {NET_SD_MS:g})| "
        f"ms per hop, first retry exponent {args.first_exponent}"
    )
    print()

    jobs = [(c, name) for c in clients_list for name in STRATEGY_NAMES]
    started = time.perf_counter()
    cells: dict[tuple[int, str], Cell] = {}
    if args.jobs == 1:
        for c, name in jobs:
            cells[(c, name)] = run_cell(c, name, args.trials, args.seed, args.first_exponent)
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                (c, name): pool.submit(
                    run_cell, c, name, args.trials, args.seed, args.first_exponent
                )
                for c, name in jobs
            }
            cells = {key: fut.result() for key, fut in futures.items()}
    elapsed = time.perf_counter() - started

    print(render(cells, clients_list, args.trials))
    print(f"wall time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
