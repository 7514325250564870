"""Which instance is the pod's when the provider lists more than one for it."""

from __future__ import annotations

from vk_trio.pods.reconciler import _choose_current
from vk_trio.pods.record import PodRecord
from vk_trio.providers.base import Instance, InstanceState


def inst(iid: str, attempt: int, state: InstanceState = InstanceState.RUNNING) -> Instance:
    return Instance(instance_id=iid, node_name="n", pod_uid="u", attempt=attempt, state=state)


def test_the_newest_attempt_wins() -> None:
    record = PodRecord(uid="u", attempt=1)
    chosen = _choose_current([inst("old", 0), inst("new", 1)], record)
    assert chosen is not None and chosen.instance_id == "new"


def test_among_duplicates_the_held_instance_is_kept() -> None:
    record = PodRecord(uid="u", instance=inst("b", 0))
    chosen = _choose_current([inst("a", 0), inst("b", 0)], record)
    assert chosen is not None and chosen.instance_id == "b"


def test_among_unknown_duplicates_the_most_advanced_is_kept() -> None:
    record = PodRecord(uid="u")
    listed = [inst("booting", 0, InstanceState.PROVISIONING), inst("up", 0)]
    chosen = _choose_current(listed, record)
    assert chosen is not None and chosen.instance_id == "up"


def test_instances_being_deleted_are_never_chosen() -> None:
    record = PodRecord(uid="u")
    assert _choose_current([inst("x", 0, InstanceState.TERMINATING)], record) is None
    assert _choose_current([inst("x", 0)], PodRecord(uid="u", attempt=2)) is None
