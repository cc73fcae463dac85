"""What one active fault does to one call of its component (`faults.FaultInjector` decides which
faults are active and records them): an error to raise, seconds to sleep, or memory held.

A model-server crash has no per-call effect: the injector kills the server and the calls see it
down. Randomness comes from the fault's own seeded `random.Random`, so a schedule and seed give
the same failures for the same sequence of calls.
"""

from __future__ import annotations

import random

from prefect_ft.demo.ran.fault_schedule import Fault

__all__ = ["InjectedFault", "fault_effect"]


class InjectedFault(RuntimeError):
    """An error raised on purpose by the fault schedule."""


def fault_effect(
    f: Fault, rng: random.Random, calls: int, leaked: list[bytearray], in_server: bool
) -> BaseException | float | None:
    """The effect of `f` on the `calls`-th call it has seen in its window: an exception to
    raise, a delay in seconds (0.0: it acted without delaying, a leak), or None (no effect).

    `leaked` holds a leak's allocations in this process (grown here, up to the fault's budget);
    `in_server`: the leak grows inside the model server instead, on this call's generation."""
    p = f.params
    if f.kind == "error_burst":
        return InjectedFault(f"injected {f.label()}") if rng.random() < p["rate"] else None
    if f.kind == "periodic":
        return InjectedFault(f"injected {f.label()}") if calls % int(p["every"]) == 0 else None
    if f.kind == "latency":
        return float(p["delay"])
    if f.kind == "drop_connections":
        return (
            ConnectionResetError(f"connection reset: injected {f.label()}")
            if rng.random() < p["rate"]
            else None
        )
    if f.kind == "memory_leak":
        if in_server:
            return 0.0  # the model server grows it on this call's generation
        held = sum(len(b) for b in leaked)
        step = int(p["mb_per_call"] * 2**20)
        if held + step <= p["budget_mb"] * 2**20:
            leaked.append(bytearray(b"\x01" * step))  # touched, so it is resident
        return 0.0
    return None  # crash: applied by the injector's tick, calls see the server down
