"""Sliding windows of call outcomes: count-based (last N calls) and time-based (last N seconds).

Both keep running totals and subtract what falls out, so a snapshot costs O(1) (Resilience4j's
design). They are mutable accumulators owned by one driver; time comes in as `now`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect_ft.core.validation import require

__all__ = ["CountWindow", "TimeWindow", "WindowCounts"]


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Totals over a window: calls, failed calls and slow calls (a call may be both)."""

    calls: int = 0
    failures: int = 0
    slow: int = 0


class CountWindow:
    """The outcomes of the last `size` calls."""

    __slots__ = ("_failed", "_i", "_n", "_slow", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        require(isinstance(size, int) and size >= 1, "window size", ">= 1 call", size)
        self.size = size
        self._failed = bytearray(size)
        self._slow = bytearray(size)
        self._i = 0
        self._n = 0
        self.calls = self.failures = self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        i = self._i
        if self._n == self.size:  # evict the oldest before overwriting its slot
            self.failures -= self._failed[i]
            self.slow -= self._slow[i]
        else:
            self._n += 1
            self.calls += 1
        self._failed[i] = failed
        self._slow[i] = slow
        self.failures += failed
        self.slow += slow
        self._i = (i + 1) % self.size

    def counts(self, now: float) -> WindowCounts:
        return WindowCounts(self.calls, self.failures, self.slow)

    def clear(self) -> None:
        self.__init__(self.size)


class TimeWindow:
    """The outcomes of the last `seconds` seconds, in one-second buckets."""

    __slots__ = ("_buckets", "_head", "calls", "failures", "seconds", "slow")

    def __init__(self, seconds: int) -> None:
        require(isinstance(seconds, int) and seconds >= 1, "window size", ">= 1 second", seconds)
        self.seconds = seconds
        self._buckets = [[0, 0, 0] for _ in range(seconds)]  # calls, failures, slow
        self._head: int | None = None  # the whole second the newest bucket belongs to
        self.calls = self.failures = self.slow = 0

    def _advance(self, now: float) -> None:
        sec = int(now // 1)
        head = self._head
        if head is None:
            self._head = sec
            return
        if sec <= head:  # same second, or a late outcome: count it in the newest bucket
            return
        for s in range(head + 1, min(sec, head + self.seconds) + 1):
            b = self._buckets[s % self.seconds]
            self.calls -= b[0]
            self.failures -= b[1]
            self.slow -= b[2]
            b[0] = b[1] = b[2] = 0
        self._head = sec

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self._advance(now)
        assert self._head is not None
        b = self._buckets[self._head % self.seconds]
        b[0] += 1
        b[1] += failed
        b[2] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def counts(self, now: float) -> WindowCounts:
        self._advance(now)
        return WindowCounts(self.calls, self.failures, self.slow)

    def clear(self) -> None:
        self.__init__(self.seconds)
