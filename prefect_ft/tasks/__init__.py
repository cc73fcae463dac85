"""The Prefect task side: `ft_task`, `FaultTolerantTaskRunner`, the guard around a task body,
the per-component gates, policy resolution and the Prefect events of breaker transitions.
"""

from prefect_ft.tasks.decorator import FaultTolerantTask, ft_task
from prefect_ft.tasks.runner import FaultTolerantTaskRunner

__all__ = ["FaultTolerantTask", "FaultTolerantTaskRunner", "ft_task"]
