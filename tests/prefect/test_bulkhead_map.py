"""A `.map()` wider than a bulkhead queues on it by default (issue 8 item 16)."""

from __future__ import annotations

import threading
import time

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.deadletter.queue import DeadLetterQueue
from prefect_ft.tasks.decorator import ft_task
from tests.prefect.helpers import fast_policy, names_of, unique


def test_a_map_of_50_over_a_bulkhead_of_4_completes_every_item() -> None:
    name = unique("map-bulk")
    # the bulkhead's defaults apart from its width: the default wait is what is under test
    policy = fast_policy(name, bulkhead=BulkheadConfig(name, max_concurrent=4))
    lock, inside, most = threading.Lock(), [0], [0]

    @ft_task(breaker=policy)
    def work(x: int) -> int:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.1)
        with lock:
            inside[0] -= 1
        return 2 * x

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=50))  # all 50 reach the bulkhead together
    def wide() -> tuple[list[str], list[int]]:
        futures = work.map(range(50))
        futures.wait()
        done = [f.result() if f.state.is_completed() else None for f in futures]
        return [f.state.name for f in futures], done

    states, results = wide()
    assert names_of(states) == {"Completed": 50}
    assert results == [2 * x for x in range(50)]
    assert most[0] <= 4
    assert list(DeadLetterQueue(name).items()) == []
