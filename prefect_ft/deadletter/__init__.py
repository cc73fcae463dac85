"""Dead letters: the queue that keeps every call a breaker or bulkhead refused, and its replay."""

from prefect_ft.deadletter.queue import DeadLetter, DeadLetterQueue
from prefect_ft.deadletter.replay import ReplayReport, areplay, current_replay, replay

__all__ = ["DeadLetter", "DeadLetterQueue", "ReplayReport", "areplay", "current_replay", "replay"]
