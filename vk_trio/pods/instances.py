"""What the provider last said about our instances, indexed by pod UID.

One ``provider.list()`` per interval feeds this view for every pod of the node (a per-pod poll
is what gets marketplace API keys throttled). Instances we just created are added at once, so
the reconciler does not create twice while the next list is still on its way; instances we just
deleted stay TERMINATING while lists that began before the delete (or a cloud that is slow to
forget) still show them, so the reconciler does not delete twice (a second DELETE answered 404).
Only when a deleted instance is still listed ``REDELETE_AFTER`` later is it deleted again: the
first delete may have been lost. An instance the provider listed but could not read
(``Instance.unreadable``) keeps its last good view here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import trio

from vk_trio.pods.usage import UsageHistory
from vk_trio.providers.base import Instance, InstanceState

REDELETE_AFTER = 60.0  # seconds a deleted instance may still be listed before we delete again


class InstanceView:
    def __init__(self) -> None:
        self._by_pod: dict[str, dict[str, Instance]] = defaultdict(dict)
        self._created_at: dict[str, float] = {}  # instance id → trio time we created it
        self._deleted_at: dict[str, float] = {}  # instance id → trio time we deleted it
        self.listed_at: float | None = None  # trio time of the last completed list()
        self.listed = trio.Event()
        self.usage = UsageHistory()  # CPU counters for the kubelet API's stats

    def for_pod(self, uid: str) -> list[Instance]:
        return sorted(self._by_pod.get(uid, {}).values(), key=lambda i: i.attempt)

    def pod_uids(self) -> list[str]:
        return [uid for uid, found in self._by_pod.items() if found]

    def all(self) -> list[Instance]:
        return [inst for found in self._by_pod.values() for inst in found.values()]

    def note_created(self, instance: Instance) -> None:
        self._by_pod[instance.pod_uid][instance.instance_id] = instance
        self._created_at[instance.instance_id] = trio.current_time()

    def may_delete(self, instance: Instance) -> bool:
        """False while a delete we sent for it is recent (it is on its way)."""
        deleted = self._deleted_at.get(instance.instance_id)
        return deleted is None or trio.current_time() - deleted >= REDELETE_AFTER

    def note_deleted(self, instance: Instance) -> None:
        """A delete was accepted: show it as TERMINATING until a list says it is gone."""
        self._deleted_at[instance.instance_id] = trio.current_time()
        found = self._by_pod.get(instance.pod_uid, {})
        if instance.instance_id in found:
            held = found[instance.instance_id]
            found[instance.instance_id] = replace(held, state=InstanceState.TERMINATING)

    def replace(self, instances: list[Instance], *, started_at: float) -> set[str]:
        """Take a fresh list; return the pod UIDs whose instances changed.

        Instances we created after the list call started are kept even if the list does not
        show them yet (a marketplace's list can lag its create).
        """
        fresh: dict[str, dict[str, Instance]] = defaultdict(dict)
        for listed in instances:
            held = self._by_pod.get(listed.pod_uid, {}).get(listed.instance_id)
            # an unreadable one keeps its last good view, which beats none (the provider said why)
            inst = held if listed.unreadable and held is not None else listed
            if not self.may_delete(inst) and inst.state is not InstanceState.TERMINATING:
                inst = replace(inst, state=InstanceState.TERMINATING)  # our delete is under way
            fresh[inst.pod_uid][inst.instance_id] = inst
        for uid, found in self._by_pod.items():
            for iid, inst in found.items():
                if self._created_at.get(iid, -1.0) >= started_at and iid not in fresh[uid]:
                    fresh[uid][iid] = inst
        listed_ids = {inst.instance_id for inst in instances}
        for iid in list(self._deleted_at):
            if iid not in listed_ids and self._deleted_at[iid] < started_at:
                del self._deleted_at[iid]  # gone, and the list saw it gone
        for iid in list(self._created_at):
            if iid in listed_ids or self._created_at[iid] < started_at:
                del self._created_at[iid]
        changed = {
            uid
            for uid in set(fresh) | set(self._by_pod)
            if fresh.get(uid, {}) != self._by_pod.get(uid, {})
        }
        self._by_pod = fresh
        self.usage.record(instances)
        self.listed_at = trio.current_time()
        self.listed.set()
        return changed

    def is_pending(self, instance_id: str) -> bool:
        """Created by us and not yet confirmed by any list."""
        return instance_id in self._created_at
