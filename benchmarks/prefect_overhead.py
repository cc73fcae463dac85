"""Overhead of `ft_task` and `FaultTolerantTaskRunner` in real Prefect flows, and of the guard alone.

Part 1 (macro): one flow mapping a trivial task over 200 inputs, in four variants run on one
Prefect server, alternated round by round (the order rotates) so drift hits all alike:

- `plain`: `@task` on `ThreadPoolTaskRunner(max_workers=8)`;
- `plain+tag`: the same with the tag `ft:component:ipc`, which guarded tasks carried until
  2026-12-01 and now carry only with `tag_component=True` (a tagged task run goes through
  Prefect's tag-concurrency lease; this variant isolates that cost);
- `ft_task`: the same function under `@ft_task(breaker="ipc")` (no tag: the component is in the
  task_key);
- `runner`: the plain task on `FaultTolerantTaskRunner(ThreadPoolTaskRunner(8), {"noop": "ipc"})`.

It prints, per variant, the median wall time and client CPU time (this process's CPU: the flow,
its task threads and the API client; the server is another process), and against `plain`: the
ratio of the medians and the median of the per-round ratios (each round runs every variant once,
so a round's ratio cancels drift between rounds). Target: ft_task and runner <= 1.05 on both.

Part 1b (API requests): the HTTP requests the Prefect client sends per task run in each variant,
counted over one more run of each flow: unlike times, this does not depend on the machine's load.

Part 2 (latency): the same variants (runner aside: direct calls bypass runners) called one after
the other, timing each call: the p50 shows the steady cost, the max the stalls.

Part 3 (micro): the guard's own cost per call, outside Prefect, with the SQLite breaker store:
the guarded function against the bare function, sync and async, for a policy name (TTL cache)
and a policy object. Also the cost of a refused call (dead-letter write + event).

Usage:
    .venv/bin/python benchmarks/prefect_overhead.py [--rounds 7] [--tasks 200] [--api-url URL]
        [--macro-only] [--no-tag-variant]

Without `--api-url` a temporary server is started with `prefect_test_harness()`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

STORE_DIR = tempfile.mkdtemp(prefix="prefect-ft-bench-")
os.environ.setdefault("PREFECT_FT_STORE_URL", f"sqlite:///{STORE_DIR}/prefect-ft.db")

from prefect import flow, task  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from prefect_ft.tasks.decorator import ft_task  # noqa: E402
from prefect_ft.tasks.runner import FaultTolerantTaskRunner  # noqa: E402

WORKERS = 8


def noop(i: int) -> int:
    return i


async def anoop(i: int) -> int:
    return i


plain_noop = task(noop)
tagged_noop = task(noop, tags=["ft:component:ipc"])
ft_noop = ft_task(noop, breaker="ipc")


def make_flows(n: int) -> dict[str, Callable[[], Any]]:
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
    def plain() -> int:
        return len(plain_noop.map(range(n)).result())

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
    def tagged() -> int:
        return len(tagged_noop.map(range(n)).result())

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
    def ft() -> int:
        return len(ft_noop.map(range(n)).result())

    runner = FaultTolerantTaskRunner(ThreadPoolTaskRunner(max_workers=WORKERS), {"noop": "ipc"})

    @flow(task_runner=runner)
    def through_runner() -> int:
        return len(plain_noop.map(range(n)).result())

    return {"plain": plain, "plain+tag": tagged, "ft_task": ft, "runner": through_runner}


def median_round_ratio(samples: dict[str, list[tuple[float, float]]], name: str, i: int) -> float:
    """Median over rounds of `name`'s measure `i` (0 wall, 1 CPU) divided by plain's that round."""
    return statistics.median(
        s[i] / p[i] for s, p in zip(samples[name], samples["plain"], strict=True)
    )


def timed_run(run: Callable[[], int], n: int, name: str, attempts: int = 3) -> tuple[float, float]:
    """(wall, CPU) of one flow run; a run the server refused (a shared SQLite server under load
    answers 503 now and then) is run again, up to `attempts` times, and said on stderr."""
    for attempt in range(1, attempts + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            assert run() == n
        except Exception as exc:
            if attempt == attempts:
                raise
            print(f"{name}: run failed ({type(exc).__name__}: {str(exc)[:120]}); running it again",
                  file=sys.stderr)  # fmt: skip
            continue
        return time.perf_counter() - wall, time.process_time() - cpu
    raise AssertionError("unreachable")


def macro(rounds: int, n: int, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[float, float]]]:
    flows = {k: v for k, v in make_flows(n).items() if k not in skip}
    names = list(flows)
    for name in names:  # warm-up: imports, policy resolution, breaker creation, first runs
        flows[name]()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].append(timed_run(flows[name], n, name))
        print(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{k} {samples[k][-1][0]:.2f}s" for k in names), file=sys.stderr)  # fmt: skip
    return samples


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def api_requests(n: int, skip: tuple[str, ...] = ()) -> dict[str, Counter[str]]:
    """Per variant, the client's HTTP requests ("METHOD /path", ids elided) during one flow run."""
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

    seen: Counter[str] = Counter()

    def label(request: Any) -> str:
        return f"{request.method} {_ID.sub('<id>', request.url.path)}"

    async_send, sync_send = PrefectHttpxAsyncClient.send, PrefectHttpxSyncClient.send

    async def acounting(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        seen[label(request)] += 1
        return await async_send(self, request, *args, **kwargs)

    def counting(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        seen[label(request)] += 1
        return sync_send(self, request, *args, **kwargs)

    out: dict[str, Counter[str]] = {}
    PrefectHttpxAsyncClient.send, PrefectHttpxSyncClient.send = acounting, counting  # type: ignore[method-assign]
    try:
        for name, run in make_flows(n).items():
            if name in skip:
                continue
            seen.clear()
            timed_run(run, n, name)
            out[name] = Counter(seen)
    finally:
        PrefectHttpxAsyncClient.send, PrefectHttpxSyncClient.send = async_send, sync_send  # type: ignore[method-assign]
    return out


def latency(n: int, rounds: int) -> dict[str, list[list[float]]]:
    """Per-call wall time of sequential direct calls (shows stalls that medians hide)."""

    def timed(t: Any) -> Callable[[], list[float]]:
        @flow
        def sequential() -> list[float]:
            out = []
            for i in range(n):
                start = time.perf_counter()
                t(i)
                out.append(time.perf_counter() - start)
            return out

        return sequential

    flows = {"plain": timed(plain_noop), "plain+tag": timed(tagged_noop), "ft_task": timed(ft_noop)}
    out: dict[str, list[list[float]]] = {k: [] for k in flows}
    for r in range(rounds):
        for name in list(flows)[r % 3 :] + list(flows)[: r % 3]:
            out[name].append(flows[name]())
    return out


def per_call(fn: Callable[[int], Any], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n


def aper_call(fn: Callable[[int], Any], n: int) -> float:
    async def go() -> float:
        start = time.perf_counter()
        for i in range(n):
            await fn(i)
        return (time.perf_counter() - start) / n

    return asyncio.run(go())


def best_of(measure: Callable[[], float], repeat: int = 5) -> float:
    return min(measure() for _ in range(repeat))


def micro(n: int) -> list[tuple[str, float, float]]:
    from prefect_ft.presets import preset_config
    from prefect_ft.tasks.policies import FTPolicy

    policy = FTPolicy("bench-object", replace(preset_config("ipc"), name="bench-object"))
    rows = []
    for label, spec in (("policy name 'ipc' (TTL cache)", "ipc"), ("FTPolicy object", policy)):
        guarded = ft_task(noop, breaker=spec).fn
        aguarded = ft_task(anoop, breaker=spec).fn
        guarded(0), asyncio.run(aguarded(0))  # build the breaker first
        bare = best_of(lambda: per_call(noop, n))
        rows.append((f"sync, {label}", bare, best_of(lambda g=guarded: per_call(g, n))))
        abare = best_of(lambda: aper_call(anoop, n))
        rows.append((f"async, {label}", abare, best_of(lambda g=aguarded: aper_call(g, n))))
    return rows


def refusal_cost(n: int = 200) -> float:
    from prefect_ft.presets import preset_config
    from prefect_ft.tasks.policies import FTPolicy

    policy = FTPolicy("bench-refused", replace(preset_config("ipc"), name="bench-refused"))
    guarded = ft_task(noop, breaker=policy).fn
    guarded(0)
    from prefect_ft.tasks.gates import gate_for

    gate_for(policy).breaker.force_open()
    start = time.perf_counter()
    for i in range(n):
        guarded(i)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--micro-calls", type=int, default=100_000)
    parser.add_argument("--api-url", default=None, help="use this server instead of a harness")
    parser.add_argument(
        "--macro-only", action="store_true", help="skip the latency and micro parts"
    )
    parser.add_argument(
        "--no-tag-variant",
        action="store_true",
        help="leave out plain+tag (on a loaded SQLite server its lease stalls make rounds long)",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.tasks < 1:
        parser.error(f"--rounds and --tasks must be >= 1 (got {args.rounds}, {args.tasks})")

    if args.api_url:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        server = temporary_settings({PREFECT_API_URL: args.api_url})
    else:
        from prefect.testing.utilities import prefect_test_harness

        server = prefect_test_harness(server_startup_timeout=120)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with server:
        skip = ("plain+tag",) if args.no_tag_variant else ()
        samples = macro(args.rounds, args.tasks, skip)
        requests = api_requests(args.tasks, skip)
        if not args.macro_only:
            lat = latency(args.tasks, rounds=3)
            rows = micro(args.micro_calls)
            refused = refusal_cost()
    ended = time.strftime("%H:%M:%S UTC", time.gmtime())
    load = os.getloadavg()
    print(f"\nRun {started} to {ended}; load average at the end {load[0]:.1f} / {load[1]:.1f} "
          f"/ {load[2]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip

    print(f"\n## Macro: one flow mapping a no-op task over {args.tasks} inputs, "
          f"{args.rounds} alternated rounds, ThreadPoolTaskRunner({WORKERS})\n")  # fmt: skip
    print("| variant | median wall (s) | median CPU (s) | wall / plain | CPU / plain "
          "| per-round wall / plain | per-round CPU / plain | min..max wall (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in samples.items()
    }
    pw, pc = med["plain"]
    for name, (mw, mc) in med.items():
        walls = [w for w, _ in samples[name]]
        rw, rc = median_round_ratio(samples, name, 0), median_round_ratio(samples, name, 1)
        print(f"| {name} | {mw:.3f} | {mc:.3f} | {mw / pw:.3f} | {mc / pc:.3f} | {rw:.3f} "
              f"| {rc:.3f} | {min(walls):.2f}..{max(walls):.2f} |")  # fmt: skip
    for name in ("ft_task", "runner"):
        (mw, mc), target = med[name], 1.05
        verdict = "met" if max(mw / pw, mc / pc) <= target else "NOT met"
        print(f"\n{name} against plain @task: wall {mw / pw:.3f}, CPU {mc / pc:.3f} "
              f"(ratio of medians; target <= {target}: {verdict})", end="")  # fmt: skip
    print()
    print(f"\n## API requests the client sent during one flow run of {args.tasks} task runs\n")
    print("| variant | requests | per task run | requests by kind (differing from plain) |")
    print("|---|---|---|---|")
    base = requests["plain"]
    for name, seen in requests.items():
        kinds = sorted(k for k in set(seen) | set(base) if seen[k] != base[k])
        shown = ", ".join(f"{k}: {seen[k]}" for k in kinds) or "as plain"
        total = sum(seen.values())
        print(f"| {name} | {total} | {total / args.tasks:.2f} | {shown} |")
    if args.macro_only:
        return
    print(f"\n## Per-call latency: {args.tasks} sequential direct calls per variant, "
          f"{len(next(iter(lat.values())))} rounds pooled\n")  # fmt: skip
    print("| variant | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | calls > 100 ms | sum (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, rounds in lat.items():
        d = sorted(x for r in rounds for x in r)
        p50, p90, p99 = (d[min(len(d) - 1, int(len(d) * f))] * 1e3 for f in (0.5, 0.9, 0.99))
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {d[-1] * 1e3:.0f} "
              f"| {sum(x > 0.1 for x in d)} | {sum(d) / len(rounds):.2f} |")  # fmt: skip
    print(f"\n## Micro: the guard alone, {args.micro_calls} calls, best of 5, SQLite store\n")
    print("| path | bare (us/call) | guarded (us/call) | added (us/call) |")
    print("|---|---|---|---|")
    for label, bare, guarded in rows:
        print(
            f"| {label} | {bare * 1e6:.2f} | {guarded * 1e6:.2f} | {(guarded - bare) * 1e6:.2f} |"
        )
    print(f"\nA refused call (dead-letter write + event + Failed state): {refused * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
