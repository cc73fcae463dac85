"""Deployable entrypoint: replay dead-lettered calls whose breaker is CLOSED.

Run it by hand, on a schedule, or from an automation on `prefect-ft.breaker.closed` (pass
`breakers=["{{ event.resource['prefect.resource.name'] }}"]`). The work is `prefect_ft.replay`;
see it for the exactly-once guarantees.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger

from prefect_ft.deadletter.replay import replay

__all__ = ["replay_dead_letters"]


@flow(name="replay-dead-letters")
def replay_dead_letters(
    breakers: list[str] | None = None,
    wait_seconds: float = 0.0,
    limit: int | None = None,
    lease_seconds: float = 300.0,
    in_doubt: Literal["rerun", "skip"] = "rerun",
    max_attempts: int = 3,
) -> dict[str, Any]:
    """Replay the dead letters of `breakers` (all breakers when empty) that are CLOSED.

    Args:
        breakers: breaker names; empty for every breaker with dead letters.
        wait_seconds: wait up to this long for each breaker to close.
        limit: replay at most this many calls.
        lease_seconds: how long a claimed call is held; must outlast the longest call.
        in_doubt: "rerun" or "skip" a call whose replayer died while running it.
        max_attempts: runs of a call that keeps failing before it is parked as failed.
    """
    report = replay(
        breakers or None,
        wait_seconds=wait_seconds,
        limit=limit,
        lease_seconds=lease_seconds,
        in_doubt=in_doubt,
        max_attempts=max_attempts,
    )
    logger = get_run_logger()
    logger.info(
        "replayed %d, failed %d, in doubt %d, remaining %d, expired %d",
        len(report.done), len(report.failed), len(report.in_doubt), report.remaining,
        report.expired,
    )  # fmt: skip
    if report.rejected:  # someone wrote to the store without the key: never unpickled
        logger.error(
            "refused %d dead letter(s) with a missing or wrong signature: %s",
            len(report.rejected), ", ".join(report.rejected),
        )  # fmt: skip
    for breaker, why in report.waiting.items():
        logger.warning("breaker %s not fully replayed: %s", breaker, why)
    return report.to_dict()
