"""The list-then-watch loop against a scripted API: resume, dedupe, bookmarks, relist on 410."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx2
import trio

from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import Changed, Synced, WatchStats, watch_resource
from vk_trio.pacing import Backoff

from .fakes import StaticAccess


def pod(name: str, rv: int) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": name, "resourceVersion": str(rv)}}


def line(kind: str, obj: dict[str, object]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class ScriptedApi:
    """Answers LISTs from ``lists`` and WATCHes from ``watches`` (each a list of lines)."""

    def __init__(self, lists: list[dict[str, object]], watches: list[list[bytes] | int]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_params: list[dict[str, str]] = []
        self.list_count = 0

    async def handler(self, request: httpx2.Request) -> httpx2.Response:
        params = dict(request.url.params)
        if params.get("watch") != "true":
            listed = self.lists[min(self.list_count, len(self.lists) - 1)]
            self.list_count += 1
            return httpx2.Response(200, json=listed)
        self.watch_params.append(params)
        if not self.watches:
            await trio.sleep_forever()
        script = self.watches.pop(0)
        if isinstance(script, int):
            return httpx2.Response(
                script,
                json={"kind": "Status", "code": script, "reason": "Expired", "message": "too old"},
            )

        async def body() -> AsyncIterator[bytes]:
            for chunk in script:
                yield chunk
                await trio.sleep(0.01)

        return httpx2.Response(200, content=body())


async def run_until(
    api: ScriptedApi, done: Callable[[list[Synced[Pod] | Changed[Pod]]], bool]
) -> tuple[list[Synced[Pod] | Changed[Pod]], WatchStats]:
    seen: list[Synced[Pod] | Changed[Pod]] = []
    stats = WatchStats()
    client = KubeClient(StaticAccess(), transport=httpx2.MockTransport(api.handler))
    async with client, trio.open_nursery() as nursery:

        async def handler(event: Synced[Pod] | Changed[Pod]) -> None:
            seen.append(event)
            if done(seen):
                nursery.cancel_scope.cancel()

        nursery.start_soon(
            lambda: watch_resource(
                client, PODS, handler, stats=stats, backoff=Backoff(initial=1, jitter=0)
            )
        )
    return seen, stats


def names(events: list[Synced[Pod] | Changed[Pod]]) -> list[str]:
    out = []
    for event in events:
        if isinstance(event, Synced):
            out.append("SYNC:" + ",".join(p.metadata.name for p in event.items))
        else:
            out.append(f"{event.type}:{event.object.metadata.name}@{event.resource_version}")
    return out


async def test_resumes_from_the_last_seen_version_and_drops_replayed_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ScriptedApi(
        lists=[{"metadata": {"resourceVersion": "5"}, "items": [pod("a", 5)]}],
        watches=[
            [line("ADDED", pod("b", 6)), line("MODIFIED", pod("a", 7))],
            # the stream broke; the server replays 7 and continues
            [line("MODIFIED", pod("a", 7)), line("DELETED", pod("b", 8))],
        ],
    )
    seen, stats = await run_until(api, lambda s: len(s) == 4)
    assert names(seen) == ["SYNC:a", "ADDED:b@6", "MODIFIED:a@7", "DELETED:b@8"]
    assert [p["resourceVersion"] for p in api.watch_params] == ["5", "7"]
    assert all(p["allowWatchBookmarks"] == "true" for p in api.watch_params)
    assert stats.duplicates_dropped == 1


async def test_bookmarks_move_the_resume_point_without_an_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ScriptedApi(
        lists=[{"metadata": {"resourceVersion": "5"}, "items": []}],
        watches=[
            [line("BOOKMARK", {"metadata": {"resourceVersion": "40"}})],
            [line("ADDED", pod("c", 41))],
        ],
    )
    seen, _ = await run_until(api, lambda s: len(s) == 2)
    assert names(seen) == ["SYNC:", "ADDED:c@41"]
    assert [p["resourceVersion"] for p in api.watch_params] == ["5", "40"]


async def test_a_bookmark_as_the_api_server_sends_it_is_read_not_reported_unreadable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # kube-apiserver's bookmark: a Pod with metadata only and ``containers: null``, which the
    # bounded Pod decoder rejects as an object
    bookmark: dict[str, object] = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "40", "creationTimestamp": None},
        "spec": {"containers": None},
        "status": {},
    }
    api = ScriptedApi(
        lists=[{"metadata": {"resourceVersion": "5"}, "items": []}],
        watches=[[line("BOOKMARK", bookmark)], [line("ADDED", pod("c", 41))]],
    )
    seen, stats = await run_until(api, lambda s: len(s) == 2)
    assert names(seen) == ["SYNC:", "ADDED:c@41"]
    assert [p["resourceVersion"] for p in api.watch_params] == ["5", "40"]
    assert stats.unreadable == 0


async def test_an_error_event_410_leads_to_a_relist(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api = ScriptedApi(
        lists=[
            {"metadata": {"resourceVersion": "5"}, "items": [pod("a", 5)]},
            {"metadata": {"resourceVersion": "90"}, "items": [pod("z", 88)]},
        ],
        watches=[[line("ERROR", gone)], [line("ADDED", pod("y", 91))]],
    )
    seen, stats = await run_until(api, lambda s: len(s) == 3)
    assert names(seen) == ["SYNC:a", "SYNC:z", "ADDED:y@91"]
    assert stats.relists_after_gone == 1
    assert api.watch_params[-1]["resourceVersion"] == "90"


async def test_an_http_410_on_watch_leads_to_a_relist(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ScriptedApi(
        lists=[
            {"metadata": {"resourceVersion": "5"}, "items": []},
            {"metadata": {"resourceVersion": "70"}, "items": [pod("q", 70)]},
        ],
        watches=[410],
    )
    seen, stats = await run_until(api, lambda s: len(s) == 2)
    assert names(seen) == ["SYNC:", "SYNC:q"]
    assert stats.relists_after_gone == 1


async def test_a_server_error_on_watch_backs_off_and_resumes_without_relisting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ScriptedApi(
        lists=[{"metadata": {"resourceVersion": "5"}, "items": []}],
        watches=[500, 500, [line("ADDED", pod("n", 6))]],
    )
    start = trio.current_time()
    seen, stats = await run_until(api, lambda s: len(s) == 2)
    assert names(seen) == ["SYNC:", "ADDED:n@6"]
    assert api.list_count == 1
    assert trio.current_time() - start >= 1 + 2  # backoff 1 s then 2 s
    assert stats.restarts == 2


async def test_an_object_that_does_not_decode_is_listed_as_unreadable_and_never_stalls_the_watch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bad = {**pod("bad", 2), "spec": {"containers": "not a list"}}
    api = ScriptedApi(
        lists=[{"metadata": {"resourceVersion": "5"}, "items": [pod("a", 1), bad]}],
        watches=[
            [
                line("MODIFIED", {**pod("bad", 6), "spec": {"containers": 5}}),
                line("ADDED", pod("b", 7)),
            ]
        ],
    )
    seen, stats = await run_until(api, lambda s: len(s) >= 2)
    synced = seen[0]
    assert isinstance(synced, Synced)
    assert [p.metadata.name for p in synced.items] == ["a"]
    assert [meta.uid for meta, _ in synced.unreadable] == ["bad"]
    assert isinstance(seen[1], Changed) and seen[1].object.metadata.name == "b"
    assert stats.unreadable == 2  # the bad list item and the bad event, each logged once


async def test_a_consumer_that_fails_on_one_event_does_not_stop_the_feed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ScriptedApi(
        lists=[{"metadata": {"resourceVersion": "1"}, "items": []}],
        watches=[[line("ADDED", pod("poison", 2)), line("ADDED", pod("fine", 3))]],
    )
    names: list[str] = []
    stats = WatchStats()
    client = KubeClient(StaticAccess(), transport=httpx2.MockTransport(api.handler))
    async with client, trio.open_nursery() as nursery:

        async def handler(event: Synced[Pod] | Changed[Pod]) -> None:
            if isinstance(event, Changed):
                if event.object.metadata.name == "poison":
                    raise ZeroDivisionError("consumer bug")
                names.append(event.object.metadata.name)
                nursery.cancel_scope.cancel()

        nursery.start_soon(lambda: watch_resource(client, PODS, handler, stats=stats))
    assert names == ["fine"] and stats.handler_faults == 1
    assert len(api.watch_params) == 1  # no reconnect: the poison event was skipped in place
