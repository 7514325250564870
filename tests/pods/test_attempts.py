"""pods/attempts.py: which instance is the pod's when the provider lists more than one for
it, and how the restarts an instance made itself become restartCount and lastState."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vk_trio.kube.models import Container, ObjectMeta, Pod, PodSpec
from vk_trio.pods.attempts import choose_current, count_in_place
from vk_trio.pods.record import PodRecord
from vk_trio.providers.base import Exit, Instance, InstanceState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POD = Pod(
    metadata=ObjectMeta(name="serve", namespace="ml", uid="u"),
    spec=PodSpec(containers=[Container(name="web", image="nginx")], restart_policy="Always"),
)


def inst(
    iid: str,
    attempt: int,
    state: InstanceState = InstanceState.RUNNING,
    *,
    restarts: int = 0,
    last_exit: Exit | None = None,
) -> Instance:
    return Instance(
        instance_id=iid,
        node_name="n",
        pod_uid="u",
        attempt=attempt,
        state=state,
        restarts=restarts,
        last_exit=last_exit,
    )


def test_the_newest_attempt_wins() -> None:
    record = PodRecord(uid="u", attempt=1)
    chosen = choose_current([inst("old", 0), inst("new", 1)], record)
    assert chosen is not None and chosen.instance_id == "new"


def test_among_duplicates_the_held_instance_is_kept() -> None:
    record = PodRecord(uid="u", instance=inst("b", 0))
    chosen = choose_current([inst("a", 0), inst("b", 0)], record)
    assert chosen is not None and chosen.instance_id == "b"


def test_among_unknown_duplicates_the_most_advanced_is_kept() -> None:
    record = PodRecord(uid="u")
    listed = [inst("booting", 0, InstanceState.PROVISIONING), inst("up", 0)]
    chosen = choose_current(listed, record)
    assert chosen is not None and chosen.instance_id == "up"


def test_instances_being_deleted_are_never_chosen() -> None:
    record = PodRecord(uid="u")
    assert choose_current([inst("x", 0, InstanceState.TERMINATING)], record) is None
    assert choose_current([inst("x", 0)], PodRecord(uid="u", attempt=2)) is None


def test_restarts_an_adopted_instance_made_before_are_not_counted_again() -> None:
    record = PodRecord(uid="u", restarts=3)  # rebuilt from the pod's restartCount
    assert count_in_place(POD, record, inst("a", 0, restarts=3), now=NOW) is None
    assert (record.restarts, record.in_place) == (3, ("a", 3))


def test_a_new_restart_in_place_counts_sets_last_state_and_says_back_off() -> None:
    record = PodRecord(uid="u", in_place=("a", 0))
    end = Exit(code=2, started_at=NOW - timedelta(minutes=1), finished_at=NOW)
    message = count_in_place(POD, record, inst("a", 0, restarts=1, last_exit=end), now=NOW)
    assert message == (
        "Back-off restarting container web in pod serve: it exited with code 2 and was "
        "restarted on a (restart 1)"
    )
    assert record.restarts == 1 and record.in_place == ("a", 1)
    assert record.last_terminated is not None
    assert (record.last_terminated.exit_code, record.last_terminated.instance_id) == (2, "a")


def test_a_restart_whose_code_the_cloud_does_not_give_says_so() -> None:
    record = PodRecord(uid="u", in_place=("a", 0))
    message = count_in_place(POD, record, inst("a", 0, restarts=2), now=NOW)
    assert message is not None and "exited with an unknown code" in message
    assert record.restarts == 2


def test_a_code_read_after_its_restart_was_counted_updates_last_state_without_an_event() -> None:
    record = PodRecord(uid="u", in_place=("a", 0))
    count_in_place(POD, record, inst("a", 0, restarts=1, last_exit=Exit(code=None)), now=NOW)
    late = inst("a", 0, restarts=1, last_exit=Exit(code=137))
    assert count_in_place(POD, record, late, now=NOW) is None
    assert record.restarts == 1
    assert record.last_terminated is not None and record.last_terminated.exit_code == 137
