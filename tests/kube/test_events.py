"""Event aggregation: a repeat bumps the existing Event; the memory of Events is a bounded LRU."""

from __future__ import annotations

import json

import httpx2
import pytest
import trio
import trio.testing

from vk_trio.kube import events as events_module
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.models import ObjectReference
from vk_trio.pacing import TokenBucket

from .fakes import StaticAccess


class ApiServer:
    """Records Event writes: POSTs (new Events) and PATCHes (bumped counts)."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.bumped: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if request.method == "POST":
            self.created.append(body["reason"])
            return httpx2.Response(201, json=body)
        self.bumped.append(request.url.path.rsplit("/", 1)[-1])
        return httpx2.Response(200, json={"metadata": {"name": "e"}})


def ref(name: str) -> ObjectReference:
    return ObjectReference(kind="Pod", name=name, namespace="ml", uid=f"uid-{name}")


async def test_a_repeated_event_bumps_the_count_of_the_one_already_written() -> None:
    server = ApiServer()
    async with KubeClient(StaticAccess(), transport=httpx2.MockTransport(server)) as client:
        recorder = EventRecorder(client, component="vk-trio", host="node")
        for _ in range(3):
            await recorder.record(ref("a"), type="Warning", reason="NoCapacity", message="none")
    assert server.created == ["NoCapacity"]
    assert len(server.bumped) == 2 and server.bumped[0] == server.bumped[1]


async def test_the_least_recently_used_event_is_forgotten_first_when_memory_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events_module, "MAX_REMEMBERED", 3)
    server = ApiServer()
    async with KubeClient(StaticAccess(), transport=httpx2.MockTransport(server)) as client:
        recorder = EventRecorder(client, component="vk-trio", host="node")

        async def say(name: str) -> None:
            await recorder.record(ref(name), type="Normal", reason=f"R-{name}", message="m")

        for name in ("a", "b", "c"):
            await say(name)
        await say("a")  # a is used again: b is now the least recently used
        await say("d")  # memory full: b is forgotten, not a
        await say("a")
        await say("b")
    assert server.created == ["R-a", "R-b", "R-c", "R-d", "R-b"]
    assert len(server.bumped) == 2


async def running(recorder: EventRecorder, nursery: trio.Nursery) -> None:
    await nursery.start(recorder.run)


async def test_repeats_waiting_in_the_queue_become_one_write_with_their_count(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    counts: list[tuple[str, int]] = []
    server = ApiServer()

    def capture(request: httpx2.Request) -> httpx2.Response:
        counts.append((request.method, json.loads(request.content)["count"]))
        return server(request)

    async with KubeClient(StaticAccess(), transport=httpx2.MockTransport(capture)) as client:
        recorder = EventRecorder(client, component="vk-trio", host="node", qps=1)
        recorder.limiter = TokenBucket(qps=1, burst=1)  # an API server far behind
        await running(recorder, nursery)
        for _ in range(20):  # twenty repeats while the budget allows one write: two writes
            await recorder.record(ref("a"), type="Warning", reason="NoCapacity", message="none")
        await trio.sleep(5)
    assert server.created == ["NoCapacity"]
    assert [method for method, _ in counts] == ["POST", "PATCH"] and counts[-1][1] == 20
    assert recorder.coalesced == 18 and recorder.filtered == 0


async def test_more_than_ten_different_messages_of_one_reason_are_combined() -> None:
    server = ApiServer()
    async with KubeClient(StaticAccess(), transport=httpx2.MockTransport(server)) as client:
        recorder = EventRecorder(client, component="vk-trio", host="node")
        for i in range(15):
            await recorder.record(ref("a"), type="Warning", reason="Failed", message=f"try {i}")
    assert len(server.created) == 11  # ten distinct ones, then one combined Event
    assert len(server.bumped) == 4  # the combined Event counts the rest


async def test_one_object_cannot_flood_the_api_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = ApiServer()
    async with KubeClient(StaticAccess(), transport=httpx2.MockTransport(server)) as client:
        recorder = EventRecorder(client, component="vk-trio", host="node")
        for i in range(40):
            await recorder.record(ref("loop"), type="Normal", reason=f"R{i}", message="m")
        assert len(server.created) == events_module.SPAM_BURST
        assert recorder.filtered == 40 - events_module.SPAM_BURST
        await recorder.record(ref("other"), type="Normal", reason="R", message="m")
        assert len(server.created) == events_module.SPAM_BURST + 1  # others are not affected
        await trio.sleep(events_module.SPAM_REFILL)
        await recorder.record(ref("loop"), type="Normal", reason="Later", message="m")
    assert server.created[-1] == "Later"  # the budget refills
