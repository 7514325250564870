"""Node capacity, enforced like the kubelet's admission: a pod that does not fit is never rented.

The scheduler keeps a node within its allocatable resources, but a pod can reach the node
without it (``spec.nodeName`` set by its author, a binding by another controller), and a node
whose ``--gpus`` says 8 must not rent a ninth GPU because a tenant wrote ``nodeName``. The
kubelet checks every new pod against what the pods it already admitted use (pods,
cpu, memory, extended resources such as ``nvidia.com/gpu``) and rejects what does not fit: the
pod is Failed with reason ``OutOf<resource>`` and the message ``Pod was rejected: Node didn't
have enough resource: <resource>, requested: R, used: U, capacity: C``, and a Warning Event.

Decisions are made here, synchronously, as the pod watch delivers pods (pods/cache.py calls
``admit``), so they follow the order in which pods were bound and no two decisions interleave:
concurrent binds cannot slip past the limit together. A batch (the first list, a relist) is
decided oldest first (creationTimestamp, then namespace/name), after every pod in it that had
already started (admitted by an earlier run of the agent, so never rejected now). A pod stops
counting when it is terminal (Succeeded/Failed) or gone; a pod being deleted still counts, as
with the kubelet. Requests are what counts (for ``nvidia.com/gpu`` the limit when no request is
written, which is what the API server defaults it to).

PURE: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from vk_trio.kube.models import Pod
from vk_trio.pods.quantity import Quantity, bytes_, cpu_millis, parse_quantity

GPU = "nvidia.com/gpu"
REJECTED_PREFIX = "Pod was rejected: "
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """What the node offers: its allocatable pods, cpu (millicores), memory (bytes), GPUs."""

    pods: int
    cpu_millis: int
    memory_bytes: int
    gpus: int

    @classmethod
    def of(cls, *, pods: int, cpu: str, memory: str, gpus: int) -> Capacity:
        return cls(pods=pods, cpu_millis=cpu_millis(cpu), memory_bytes=bytes_(memory), gpus=gpus)


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_millis: int = 0
    memory_bytes: int = 0
    gpus: int = 0


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """Why a pod was not admitted: the kubelet's reason, message and Event."""

    resource: str
    requested: int
    used: int
    capacity: int

    @property
    def reason(self) -> str:
        return f"OutOf{self.resource}"

    @property
    def message(self) -> str:
        """The Event's message (the pod's status message has REJECTED_PREFIX before it)."""
        return (
            f"Node didn't have enough resource: {self.resource}, requested: {self.requested}, "
            f"used: {self.used}, capacity: {self.capacity}"
        )


def usage_of(pod: Pod) -> Usage:
    """What ``pod`` requests, summed over its containers (an unreadable quantity counts as 0:
    such a pod is failed by pods/translate.py before anything is rented)."""
    cpu = memory = gpus = 0
    for container in pod.spec.containers:
        requests, limits = container.resources.requests, container.resources.limits
        cpu += _amount(requests.get("cpu"), cpu_millis)
        memory += _amount(requests.get("memory"), bytes_)
        gpus += _amount(requests.get(GPU, limits.get(GPU)), _whole)
    return Usage(cpu_millis=cpu, memory_bytes=memory, gpus=gpus)


def _whole(value: Quantity) -> int:
    return int(parse_quantity(value))


def _amount(value: Quantity | None, convert: Callable[[Quantity], int]) -> int:
    if value is None:
        return 0
    try:
        return max(0, convert(value))
    except ValueError:
        return 0


def _started(pod: Pod) -> bool:
    """Admitted by an earlier run of the agent: it has run, or had an instance."""
    status = pod.status
    return status.phase == "Running" or any(
        s.container_id or s.state.running is not None or s.restart_count
        for s in status.container_statuses
    )


def _terminal(pod: Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


class Admission:
    """The admitted pods of the node, what they use, and the pods rejected."""

    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self._admitted: dict[str, Usage] = {}
        self._rejected: dict[str, Rejection] = {}
        self._cpu = self._memory = self._gpus = 0

    @property
    def used(self) -> tuple[int, Usage]:
        """(pods, resources) the admitted pods use now."""
        return len(self._admitted), Usage(self._cpu, self._memory, self._gpus)

    def decided(self, uid: str) -> bool:
        return uid in self._admitted or uid in self._rejected

    def rejection(self, uid: str) -> Rejection | None:
        """Why the pod was rejected, or None (admitted, or never seen: not ours to refuse)."""
        return self._rejected.get(uid)

    def admit(self, pods: Iterable[Pod]) -> None:
        """Decide the pods not decided yet, and release those that ended (see the module)."""
        new: list[Pod] = []
        for pod in pods:
            uid = pod.metadata.uid
            if _terminal(pod):
                self.release(uid)
            elif uid in self._admitted or uid in self._rejected:
                continue
            elif _started(pod):
                self._take(uid, usage_of(pod))
            else:
                new.append(pod)
        new.sort(key=_arrival)
        for pod in new:
            usage = usage_of(pod)
            rejection = self._check(usage)
            if rejection is None:
                self._take(pod.metadata.uid, usage)
            else:
                self._rejected[pod.metadata.uid] = rejection

    def release(self, uid: str) -> None:
        """The pod ended or is gone: what it used is free again."""
        usage = self._admitted.pop(uid, None)
        if usage is not None:
            self._cpu -= usage.cpu_millis
            self._memory -= usage.memory_bytes
            self._gpus -= usage.gpus

    def forget(self, uid: str) -> None:
        """The pod is gone from the API: nothing is remembered of it."""
        self.release(uid)
        self._rejected.pop(uid, None)

    def _take(self, uid: str, usage: Usage) -> None:
        self._admitted[uid] = usage
        self._cpu += usage.cpu_millis
        self._memory += usage.memory_bytes
        self._gpus += usage.gpus

    def _check(self, usage: Usage) -> Rejection | None:
        """The kubelet's order: pods, cpu, memory, then extended resources."""
        cap = self.capacity
        checks = (
            ("pods", 1, len(self._admitted), cap.pods),
            ("cpu", usage.cpu_millis, self._cpu, cap.cpu_millis),
            ("memory", usage.memory_bytes, self._memory, cap.memory_bytes),
            (GPU, usage.gpus, self._gpus, cap.gpus),
        )
        for resource, requested, used, capacity in checks:
            if requested and used + requested > capacity:
                return Rejection(
                    resource=resource, requested=requested, used=used, capacity=capacity
                )
        return None


def _arrival(pod: Pod) -> tuple[datetime, str, str]:
    meta = pod.metadata
    created = meta.creation_timestamp or _EPOCH
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created, meta.namespace, meta.name
