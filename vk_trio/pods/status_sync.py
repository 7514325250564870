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
cache is enqueued like any pod, and the reconciler deletes it (a pod that exists but cannot be
decoded is not missing: its instance is left alone).

Nothing stops the loop but cancellation: a CloudError is a warning and a backoff, and any other
exception (of the provider's list or of this loop's own bookkeeping) is a fault, logged once
with its traceback (vk_trio/faults.py), counted, and followed by the same backoff.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from vk_trio import faults
from vk_trio.logs import get_logger
from vk_trio.pacing import Backoff
from vk_trio.pods.cache import PodCache
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.queue import WorkQueue
from vk_trio.pods.reconciler import Reconciler
from vk_trio.providers.base import CloudError, Instance, Provider

POKE_COALESCE = 0.2  # pokes within this window share one list
JOB_INTERVAL = 5.0  # while a Job pod runs: its end is noticed (and its billing ended) within this

_log = get_logger("vk_trio.pods.status_sync")


_housekeep_faults = faults.FaultLog()


async def _housekeep(provider: Provider) -> None:
    """The provider's optional work between lists (reading exit markers), off the lists' path:
    a list is what makes a pod Ready, and it must not wait for log reads."""
    housekeep = getattr(provider, "housekeep", None)
    if callable(housekeep):
        try:
            await housekeep()
            _housekeep_faults.clear("housekeep")
        except Exception as exc:  # never Cancelled (faults.py): the next list comes regardless
            what = "provider housekeeping"
            _housekeep_faults.failed("housekeep", exc, log=_log, what=what, routine=CloudError)


@dataclass
class SyncStats:
    lists: int = 0
    failures: int = 0
    faults: int = 0  # failures that were not a CloudError (logged with a traceback)
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
    fault_log = faults.FaultLog()
    await cache.synced.wait()
    first = True
    failures = 0
    while True:
        reconciler.poke.wanted = trio.Event()
        started_at = trio.current_time()
        try:
            instances = await provider.list()
            failures = 0
            stats.lists += 1
            fault_log.clear("list")
            _take(instances, view=view, cache=cache, queue=queue, stats=stats, at=started_at)
            if first:
                for uid in cache.uids():
                    queue.add(uid)
                first = False
                task_status.started()
            interval = _interval(reconciler, fast=fast_interval, steady=steady_interval)
        except Exception as exc:  # never Cancelled (faults.py): the loop goes on
            stats.failures += 1
            retry_after = None
            if faults.only(exc, CloudError):
                _log.warning("listing instances failed: %s", faults.first(exc))
                retry_after = getattr(faults.first(exc), "retry_after", None)
            else:
                stats.faults += 1
                fault_log.report("list", exc, log=_log, what="listing instances")
            await trio.sleep(backoff.delay(failures, retry_after=retry_after))
            failures += 1
            continue
        with trio.move_on_after(interval):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_housekeep, provider)  # cut off when the next list is due
                await reconciler.poke.wanted.wait()
                await trio.sleep(POKE_COALESCE)
                nursery.cancel_scope.cancel()


def _take(
    instances: list[Instance],
    *,
    view: InstanceView,
    cache: PodCache,
    queue: WorkQueue,
    stats: SyncStats,
    at: float,
) -> None:
    """Feed a fresh list to the view and enqueue what changed, and the orphans."""
    changed = view.replace(instances, started_at=at)
    for uid in view.pod_uids():
        if cache.get(uid) is None and cache.unreadable(uid) is None:
            stats.orphans_seen += 1
            _log.info("instance(s) of pod %s have no pod: deleting", uid)
            queue.add(uid)
    for uid in changed:
        queue.add(uid)


def _interval(reconciler: Reconciler, *, fast: float, steady: float) -> float:
    if reconciler.transitioning():
        return fast
    if reconciler.awaiting_exit():
        return min(steady, max(fast, JOB_INTERVAL))
    return steady
