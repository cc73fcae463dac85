"""`alerts apply` judges an automation unchanged whatever order a set's members come in.

A trigger's `expect` is a set: two equal sets built in different insertion orders can iterate
(and so dump to JSON) in different orders when their hashes collide, which depends on the
process's hash seed. The second `alerts apply` then saw the emergency automation (two events) as
changed in some runs ("updated", not "unchanged").
"""

from __future__ import annotations

from prefect_ft.ops.alerts import _strip


def test_the_order_of_a_sets_members_does_not_make_two_automations_differ() -> None:
    a = {"trigger": {"expect": ["prefect-ft.emergency.shutdown", "prefect-ft.emergency.cleared"]}}
    b = {"trigger": {"expect": ["prefect-ft.emergency.cleared", "prefect-ft.emergency.shutdown"]}}
    assert _strip(a) == _strip(b)


def test_the_order_of_actions_still_matters() -> None:
    a = {"actions": [{"type": "send-notification"}, {"type": "pause-automation"}]}
    b = {"actions": [{"type": "pause-automation"}, {"type": "send-notification"}]}
    assert _strip(a) != _strip(b)
