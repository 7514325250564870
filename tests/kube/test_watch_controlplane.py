"""watch_resource against a real kube-apiserver through the fault proxy: watches cut, ended,
expired (410 as an ERROR event and as an HTTP status) while ConfigMaps change underneath.

The handler here is the cache every consumer keeps (Synced replaces it, Changed applies one
change). After every disruption it must end equal to the server's own list, no change may
be delivered twice, and every resourceVersion the test wrote must reach it, as an event or
inside a Synced after a relist.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from tests.controlplane.launcher import ControlPlane
from tests.faultproxy import FaultProxy
from tests.kube.controlplane_support import FAST_BACKOFF, client_from
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import ConfigMap
from vk_trio.kube.resources import CONFIGMAPS
from vk_trio.kube.watch import Changed, Synced, WatchStats, watch_resource
from vk_trio.pacing import Backoff

pytestmark = pytest.mark.controlplane

LIMIT = 45.0  # seconds any one test may take
CONVERGE_LIMIT = 15.0
LABELS = {"watched": "yes"}
SELECTOR = "watched=yes"


@dataclass
class Mirror:
    """A consumer's cache, plus the record of everything it was handed."""

    view: dict[str, ConfigMap] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, rv)
    synced: list[dict[str, str]] = field(default_factory=list)  # name -> rv, per Synced
    changed: trio.Event = field(default_factory=trio.Event)

    async def __call__(self, update: Synced[ConfigMap] | Changed[ConfigMap]) -> None:
        if isinstance(update, Synced):
            self.view = {cm.metadata.name: cm for cm in update.items}
            self.synced.append(
                {cm.metadata.name: cm.metadata.resource_version for cm in update.items}
            )
        else:
            name = update.object.metadata.name
            self.events.append((update.type, name, update.resource_version))
            if update.type == "DELETED":
                self.view.pop(name, None)
            else:
                self.view[name] = update.object
        self.changed.set()
        self.changed = trio.Event()

    def state(self) -> dict[str, tuple[str, dict[str, str]]]:
        return {n: (cm.metadata.resource_version, cm.data) for n, cm in self.view.items()}

    def delivered(self) -> set[tuple[str, str]]:
        """Every (name, resourceVersion) the handler was given, as an event or in a Synced."""
        pairs = {(name, rv) for _, name, rv in self.events}
        for snapshot in self.synced:
            pairs |= set(snapshot.items())
        return pairs


@dataclass
class Writer:
    """Writes ConfigMaps directly (not through the proxy) and remembers every version made."""

    client: KubeClient
    namespace: str
    written: list[tuple[str, str]] = field(default_factory=list)  # (name, rv)
    deleted: list[str] = field(default_factory=list)

    async def create(self, name: str, value: str) -> None:
        body = {"metadata": {"name": name, "labels": LABELS}, "data": {"v": value}}
        cm = await self.client.create(CONFIGMAPS, body, namespace=self.namespace)
        self.written.append((name, cm.metadata.resource_version))

    async def update(self, name: str, value: str) -> None:
        patch = {"data": {"v": value}}
        cm = await self.client.patch(CONFIGMAPS, name, patch, namespace=self.namespace)
        self.written.append((name, cm.metadata.resource_version))

    async def delete(self, name: str) -> None:
        await self.client.delete(CONFIGMAPS, name, namespace=self.namespace)
        self.deleted.append(name)

    async def server_state(self) -> dict[str, tuple[str, dict[str, str]]]:
        listed = await self.client.list(
            CONFIGMAPS, namespace=self.namespace, label_selector=SELECTOR
        )
        return {cm.metadata.name: (cm.metadata.resource_version, cm.data) for cm in listed.items}


@pytest.fixture
async def writer(controlplane: ControlPlane, namespace: str) -> AsyncIterator[Writer]:
    async with client_from(controlplane.kubeconfig) as client:
        yield Writer(client, namespace)


@pytest.fixture
async def watch_client(proxy_kubeconfig: Path) -> AsyncIterator[KubeClient]:
    async with client_from(proxy_kubeconfig) as client:
        yield client


async def converge(mirror: Mirror, writer: Writer) -> None:
    """Wait until the handler's view equals the server's list (fails after CONVERGE_LIMIT)."""
    with trio.fail_after(CONVERGE_LIMIT):
        while True:
            expected = await writer.server_state()
            if mirror.state() == expected:
                return
            with trio.move_on_after(0.5):
                await mirror.changed.wait()


async def wait_for(condition: Callable[[], bool], *, what: str, limit: float = 10.0) -> None:
    try:
        with trio.fail_after(limit):
            while not condition():
                await trio.sleep(0.01)
    except trio.TooSlowError:
        raise AssertionError(f"timed out after {limit:g} s waiting for {what}") from None


async def watch_is_open(proxy: FaultProxy) -> None:
    """Wait for the watcher's stream to be open at the proxy (faults armed now hit the next)."""
    await wait_for(lambda: proxy.open_watches > 0, what="a watch open at the proxy")


async def drop_open_watch(proxy: FaultProxy, *, graceful: bool) -> None:
    """Wait for the watcher's stream to be open at the proxy, then end it."""
    await watch_is_open(proxy)
    assert proxy.drop_watches(graceful=graceful) >= 1


def assert_exactly_once(mirror: Mirror, writer: Writer) -> None:
    """No change twice, none skipped: the invariants of a correct list-then-watch."""
    pairs = Counter((name, rv) for _, name, rv in mirror.events)
    duplicates = {pair: n for pair, n in pairs.items() if n > 1}
    assert not duplicates, f"delivered more than once: {duplicates}"
    missing = [pair for pair in writer.written if pair not in mirror.delivered()]
    assert not missing, f"written but never delivered: {missing}"
    rvs = [int(rv) for _, _, rv in mirror.events]
    assert rvs == sorted(rvs), "events arrive in resourceVersion order"


async def run_watch(
    nursery: trio.Nursery, client: KubeClient, namespace: str, mirror: Mirror, stats: WatchStats
) -> None:
    await nursery.start(
        functools.partial(
            watch_resource,
            client,
            CONFIGMAPS,
            mirror,
            namespace=namespace,
            label_selector=SELECTOR,
            backoff=FAST_BACKOFF,
            stats=stats,
        )
    )


async def test_cut_and_ended_watches_resume_without_losing_or_repeating_a_change(
    watch_client: KubeClient, writer: Writer, fault_proxy: FaultProxy, namespace: str
) -> None:
    """A stream cut mid-body must resume from the newest resourceVersion it delivered, not
    from where it started: otherwise the server replays, and the handler gets, every change
    that stream had already delivered."""
    mirror, stats = Mirror(), WatchStats()
    names = [f"cm{i:02d}" for i in range(12)]
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            await run_watch(nursery, watch_client, namespace, mirror, stats)
            assert mirror.synced == [{}]

            for name in names:
                await writer.create(name, "1")
            await drop_open_watch(fault_proxy, graceful=False)  # connection cut mid-body
            for name in names:  # written while the watcher reconnects
                await writer.update(name, "2")
            await drop_open_watch(fault_proxy, graceful=True)  # body ended cleanly
            for name in names[:8]:
                await writer.update(name, "3")
            for name in names[8:]:
                await writer.delete(name)
            await drop_open_watch(fault_proxy, graceful=False)
            for name in ("new1", "new2"):
                await writer.create(name, "1")
            await writer.update("cm00", "4")
            await writer.delete("cm01")
            await drop_open_watch(fault_proxy, graceful=False)
            await writer.update("new1", "2")

            await converge(mirror, writer)
            nursery.cancel_scope.cancel()

    assert_exactly_once(mirror, writer)
    # Every change came as an event: resuming from the last resourceVersion needs no relist.
    assert set(writer.written) <= {(n, rv) for _, n, rv in mirror.events}
    deleted_events = {name for kind, name, _ in mirror.events if kind == "DELETED"}
    assert deleted_events == set(writer.deleted)
    assert stats.lists == 1
    assert stats.relists_after_gone == 0
    assert stats.restarts >= 4
    assert stats.watches >= 5
    watches = [info for info in fault_proxy.seen if info.is_watch]
    assert len(watches) == stats.watches
    resumed_from = [info.params["resourceVersion"][0] for info in watches]
    assert resumed_from == sorted(resumed_from, key=int), "no watch restarts from an older version"


async def test_an_expired_watch_error_event_makes_a_relist_that_converges(
    watch_client: KubeClient, writer: Writer, fault_proxy: FaultProxy, namespace: str
) -> None:
    mirror, stats = Mirror(), WatchStats()
    names = [f"cm{i}" for i in range(6)]
    with trio.fail_after(LIMIT):
        for name in names[:2]:  # already there at the first list
            await writer.create(name, "0")
        async with trio.open_nursery() as nursery:
            await run_watch(nursery, watch_client, namespace, mirror, stats)
            for name in names[2:]:
                await writer.create(name, "1")
            await converge(mirror, writer)

            await watch_is_open(fault_proxy)
            fault_proxy.inject_watch_error_410()
            await drop_open_watch(fault_proxy, graceful=False)
            # Changes while the watcher is away; each object at most once, so each version
            # must surface as an event or in the relist's Synced.
            await writer.update("cm0", "2")
            await writer.delete("cm1")
            await writer.create("late", "1")
            await wait_for(lambda: stats.relists_after_gone == 1, what="a relist after 410")
            await converge(mirror, writer)

            await writer.update("cm2", "3")  # after the relist: an ordinary event
            await writer.delete("cm3")
            await converge(mirror, writer)
            nursery.cancel_scope.cancel()

    assert_exactly_once(mirror, writer)
    assert stats.relists_after_gone == 1
    assert stats.lists == 2
    assert len(mirror.synced) == 2
    assert fault_proxy.faults.watch_errors[0].remaining == 0
    assert any(n == "cm2" and t == "MODIFIED" for t, n, _ in mirror.events)


async def test_an_http_410_on_a_watch_request_makes_a_relist_that_converges(
    watch_client: KubeClient, writer: Writer, fault_proxy: FaultProxy, namespace: str
) -> None:
    mirror, stats = Mirror(), WatchStats()

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            await run_watch(nursery, watch_client, namespace, mirror, stats)
            for i in range(4):
                await writer.create(f"cm{i}", "1")
            await converge(mirror, writer)

            await watch_is_open(fault_proxy)
            fault_proxy.fail_next(1, status=410, match=lambda info: info.is_watch)
            await drop_open_watch(fault_proxy, graceful=True)
            await writer.update("cm0", "2")
            await writer.delete("cm1")
            await wait_for(lambda: stats.relists_after_gone == 1, what="a relist after HTTP 410")
            await converge(mirror, writer)
            await writer.create("cm9", "1")
            await converge(mirror, writer)
            nursery.cancel_scope.cancel()

    assert_exactly_once(mirror, writer)
    assert stats.relists_after_gone == 1
    assert stats.lists == 2
    assert fault_proxy.faults.rules[0].remaining == 0
    assert "cm1" not in mirror.view
    assert mirror.view["cm0"].data == {"v": "2"}


async def test_a_relist_drops_objects_deleted_while_the_watcher_was_away(
    watch_client: KubeClient, writer: Writer, fault_proxy: FaultProxy, namespace: str
) -> None:
    """The reason Synced replaces rather than merges: a deletion the watch never reported."""
    mirror, stats = Mirror(), WatchStats()
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            await run_watch(nursery, watch_client, namespace, mirror, stats)
            await writer.create("doomed", "1")
            await converge(mirror, writer)

            # Every watch fails with 410 (so the watcher relists again and again) until a list
            # made after the deletion has been handed over: only a relist can tell.
            blocking = True
            await watch_is_open(fault_proxy)
            fault_proxy.fail_next(
                1_000_000, status=410, match=lambda info: blocking and info.is_watch
            )
            await drop_open_watch(fault_proxy, graceful=False)
            await writer.delete("doomed")
            lists_before = stats.lists
            await wait_for(lambda: stats.lists >= lists_before + 2, what="a list after the delete")
            blocking = False
            await converge(mirror, writer)
            nursery.cancel_scope.cancel()

    assert "doomed" not in mirror.view
    assert ("DELETED", "doomed") not in {(t, n) for t, n, _ in mirror.events}
    assert stats.relists_after_gone >= 1


async def test_a_server_answering_every_watch_with_410_is_relisted_with_backoff(
    proxy_kubeconfig: Path, writer: Writer, fault_proxy: FaultProxy, namespace: str
) -> None:
    """Persistent 410s must not turn list+watch into a hot loop that spends the client's whole
    QPS budget (shared with node heartbeats and status patches): the first 410 relists at
    once, repeated ones back off, as client-go's reflector does."""
    mirror, stats = Mirror(), WatchStats()
    expiring = True
    seconds = 3.0
    backoff = Backoff(initial=0.2, maximum=1.0, jitter=0)
    with trio.fail_after(LIMIT):
        async with (
            client_from(proxy_kubeconfig, qps=50, burst=100) as client,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(
                functools.partial(
                    watch_resource,
                    client,
                    CONFIGMAPS,
                    mirror,
                    namespace=namespace,
                    label_selector=SELECTOR,
                    backoff=backoff,
                    stats=stats,
                )
            )
            await watch_is_open(fault_proxy)
            fault_proxy.fail_next(
                1_000_000, status=410, match=lambda info: expiring and info.is_watch
            )
            await drop_open_watch(fault_proxy, graceful=True)
            await trio.sleep(seconds)
            relists = stats.relists_after_gone
            expiring = False
            await writer.create("after", "1")
            await converge(mirror, writer)
            nursery.cancel_scope.cancel()

    # 0.2 + 0.4 + 0.8 + 1.0 ... s between relists: about 5 in 3 s; a hot loop does ~125.
    assert 2 <= relists <= 8, f"{relists} relists in {seconds:g} s of persistent 410s"
    assert "after" in mirror.view
