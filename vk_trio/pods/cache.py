"""The pods bound to our node, as the watch last told us, and the hook that enqueues them.

The cache is fed only by the pod watch (fieldSelector spec.nodeName=<node>) and by the answers
to our own status patches (which are newer than anything the watch has sent yet). Updates that
are not newer than what we hold, by resourceVersion, are ignored so a late watch event cannot
roll the cache back (and the watch's echo of our own patch costs nothing). The pods held share
their equal values (kube/sharing.py): at 10,000 pods the cache is most of the agent's memory.

Every pod that arrives goes through admission (pods/admission.py) here, in watch order, so node
capacity is decided once per pod and concurrent binds are decided one after another. A pod the
API lists but our model cannot decode is remembered as ``unreadable``: it exists, so its
instance is no orphan, but there is nothing we can reconcile until it can be read again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import trio

from vk_trio.faults import FaultLog
from vk_trio.kube.models import ObjectMeta, Pod
from vk_trio.kube.sharing import ValuePool, share_values
from vk_trio.kube.watch import Changed, Synced
from vk_trio.logs import get_logger
from vk_trio.pods.admission import Admission

_log = get_logger("vk_trio.pods.cache")
_faults = FaultLog()


def _rv(pod: Pod) -> int:
    try:
        return int(pod.metadata.resource_version)
    except ValueError:
        return -1


class PodCache:
    def __init__(
        self, on_change: Callable[[str], None], *, admission: Admission | None = None
    ) -> None:
        self._pods: dict[str, Pod] = {}
        self._unreadable: dict[str, ObjectMeta] = {}
        self._on_change = on_change
        self._pool = ValuePool()
        self.admission = admission
        self.synced = trio.Event()

    def __len__(self) -> int:
        return len(self._pods)

    def __iter__(self) -> Iterator[Pod]:
        return iter(list(self._pods.values()))

    def get(self, uid: str) -> Pod | None:
        return self._pods.get(uid)

    def uids(self) -> list[str]:
        return list(self._pods)

    def unreadable(self, uid: str) -> ObjectMeta | None:
        """The metadata of a pod that exists but cannot be decoded (None: not such a pod)."""
        return self._unreadable.get(uid)

    def update(self, pod: Pod) -> None:
        """Take a newer copy of a pod (from a watch event or a write we made)."""
        uid = pod.metadata.uid
        held = self._pods.get(uid)
        if held is not None and 0 <= _rv(pod) <= _rv(held):
            return
        self._pods[uid] = share_values(pod, self._pool)
        self._unreadable.pop(uid, None)
        self._admit([pod])

    def _admit(self, pods: Iterable[Pod]) -> None:
        """Admission in watch order; should it fail, each pod's worker decides it (and the
        failure becomes that pod's, see the reconciler), and the pods are still enqueued."""
        if self.admission is None:
            return
        try:
            self.admission.admit(pods)
        except Exception as exc:
            _faults.report("admission", exc, log=_log, what="admitting pods")

    async def handle(self, event: Synced[Pod] | Changed[Pod]) -> None:
        """The watch callback: keep the cache and enqueue every pod that changed."""
        if isinstance(event, Synced):
            fresh = {pod.metadata.uid: share_values(pod, self._pool) for pod in event.items}
            gone = set(self._pods) - set(fresh)
            self._pods = fresh
            self._unreadable = {meta.uid: meta for meta, _ in event.unreadable if meta.uid}
            if self.admission is not None:
                for uid in gone:
                    self.admission.forget(uid)
            self._admit(fresh.values())
            for uid in [*fresh, *gone]:
                self._on_change(uid)
            self.synced.set()
            return
        uid = event.object.metadata.uid
        if event.type == "DELETED":
            self._pods.pop(uid, None)
            self._unreadable.pop(uid, None)
            if self.admission is not None:
                self.admission.forget(uid)
        else:
            self.update(event.object)
        self._on_change(uid)
