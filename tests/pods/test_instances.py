"""The instance view: one list per interval, diffed; our own creates are not forgotten."""

from __future__ import annotations

import trio

from vk_trio.pods.instances import InstanceView
from vk_trio.providers.base import Instance, InstanceState


def inst(iid: str, uid: str, state: InstanceState = InstanceState.RUNNING) -> Instance:
    return Instance(instance_id=iid, node_name="n", pod_uid=uid, state=state)


async def test_a_list_reports_only_the_pods_whose_instances_changed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = InstanceView()
    assert view.replace([inst("a", "p1"), inst("b", "p2")], started_at=0) == {"p1", "p2"}
    changed = view.replace(
        [inst("a", "p1"), inst("b", "p2", InstanceState.EXITED)], started_at=trio.current_time()
    )
    assert changed == {"p2"}
    assert view.replace([inst("a", "p1")], started_at=trio.current_time()) == {"p2"}
    assert view.for_pod("p2") == []


async def test_an_instance_created_during_a_list_survives_a_list_that_missed_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = InstanceView()
    list_started = trio.current_time()
    await trio.sleep(1)
    view.note_created(inst("new", "p9", InstanceState.PROVISIONING))
    view.replace([], started_at=list_started)  # the list began before the create
    assert [i.instance_id for i in view.for_pod("p9")] == ["new"]
    assert view.is_pending("new")
    await trio.sleep(1)
    view.replace([inst("new", "p9")], started_at=trio.current_time())
    assert not view.is_pending("new")


async def test_an_instance_missing_from_a_later_list_is_gone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = InstanceView()
    view.note_created(inst("x", "p1"))
    await trio.sleep(1)
    view.replace([], started_at=trio.current_time())  # the list began after the create
    assert view.for_pod("p1") == []


async def test_a_deleted_instance_shows_terminating_until_the_next_list() -> None:
    view = InstanceView()
    view.note_created(inst("i", "p"))
    view.note_deleted(inst("i", "p"))
    assert view.for_pod("p")[0].state is InstanceState.TERMINATING


async def test_an_unreadable_instance_keeps_its_last_good_view(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = InstanceView()
    view.replace([inst("a", "p1"), inst("b", "p2")], started_at=0)
    placeholder = Instance(
        instance_id="a",
        node_name="n",
        pod_uid="p1",
        state=InstanceState.PROVISIONING,
        unreadable=True,
    )
    changed = view.replace([placeholder, inst("b", "p2", InstanceState.EXITED)], started_at=1)
    assert changed == {"p2"}  # the other pod is reconciled as usual
    (kept,) = view.for_pod("p1")
    assert kept.state is InstanceState.RUNNING and not kept.unreadable
    new = Instance(
        instance_id="c",
        node_name="n",
        pod_uid="p3",
        state=InstanceState.PROVISIONING,
        unreadable=True,
    )
    view.replace([placeholder, new], started_at=2)
    assert view.for_pod("p3") == [new]  # never seen readable: still known, so no second rental
