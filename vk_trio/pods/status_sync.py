"""Actual state from the provider: one ``list()`` per interval for every pod of the node.

Between two lists the provider may do its own housekeeping (``housekeep``, optional: reading
exit markers from logs), cut off when the next list is due, so no list waits for it.

The loop polls fast (``fast_interval``, default 2 s) while any pod is on its way somewhere
(provisioning, restarting, being deleted), every ``JOB_INTERVAL`` while a Job-like pod runs (an
instance whose process ended still bills until we notice), and at the steady
``reconcile_interval`` otherwise,
so a quiet node costs one provider call per interval whatever its size. The reconciler can
poke it for an early list after a create or delete. Each list is diffed against the last one
and only pods whose instances changed are enqueued.

It is also the money guard: an instance tagged with this node whose pod is not in the (synced)
cache is enqueued like any pod, and the reconciler deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from vk_trio.logs import get_logger
from vk_trio.pacing import Backoff
from vk_trio.pods.cache import PodCache
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.queue import WorkQueue
from vk_trio.pods.reconciler import Reconciler
from vk_trio.providers.base import CloudError, Provider

POKE_COALESCE = 0.2  # pokes within this window share one list
JOB_INTERVAL = 5.0  # while a Job pod runs: its end is noticed (and its billing ended) within this

_log = get_logger("vk_trio.pods.status_sync")


async def _housekeep(provider: Provider) -> None:
    """The provider's optional work between lists (reading exit markers), off the lists' path:
    a list is what makes a pod Ready, and it must not wait for log reads."""
    housekeep = getattr(provider, "housekeep", None)
    if callable(housekeep):
        try:
            await housekeep()
        except CloudError as exc:
            _log.info("provider housekeeping failed: %s", exc)


@dataclass
class SyncStats:
    lists: int = 0
    failures: int = 0
    orphans_seen: int = 0


async def run_status_sync(
    *,
    provider: Provider,
    view: InstanceView,
    cache: PodCache,
    queue: WorkQueue,
    reconciler: Reconciler,
    fast_interval: float,
    steady_interval: float,
    stats: SyncStats | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Poll forever. ``started`` fires after the first list (the recovery pass) is queued."""
    stats = stats or SyncStats()
    backoff = Backoff(initial=1.0, maximum=steady_interval)
    await cache.synced.wait()
    first = True
    failures = 0
    while True:
        reconciler.poke.wanted = trio.Event()
        started_at = trio.current_time()
        try:
            instances = await provider.list()
        except CloudError as exc:
            stats.failures += 1
            _log.warning("listing instances failed: %s", exc)
            await trio.sleep(backoff.delay(failures, retry_after=exc.retry_after))
            failures += 1
            continue
        failures = 0
        stats.lists += 1
        changed = view.replace(instances, started_at=started_at)
        for uid in view.pod_uids():
            if cache.get(uid) is None:
                stats.orphans_seen += 1
                _log.info("instance(s) of pod %s have no pod: deleting", uid)
                queue.add(uid)
        for uid in changed:
            queue.add(uid)
        if first:
            for uid in cache.uids():
                queue.add(uid)
            first = False
            task_status.started()
        if reconciler.transitioning():
            interval = fast_interval
        elif reconciler.awaiting_exit():
            interval = min(steady_interval, max(fast_interval, JOB_INTERVAL))
        else:
            interval = steady_interval
        with trio.move_on_after(interval):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_housekeep, provider)  # cut off when the next list is due
                await reconciler.poke.wanted.wait()
                await trio.sleep(POKE_COALESCE)
                nursery.cancel_scope.cancel()
