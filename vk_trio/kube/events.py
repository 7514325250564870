"""Kubernetes Events for the pods we run, aggregated the way the kubelet does it.

A user's first question is ``kubectl describe pod``; Events are where we answer it. A pod that
waits for GPU capacity would otherwise emit the same "no capacity" Event every few seconds, so
repeats of the same (object, type, reason, message) within ``AGGREGATE_WINDOW`` bump ``count`` and
``lastTimestamp`` of the existing Event instead of creating a new one.

Like the kubelet's event broadcaster, recording is asynchronous with a rate of its own
(``EVENT_QPS``/``EVENT_BURST``, outside the client's main budget): ``record`` only queues, and a
background task (``run``) writes. Pod status writes never wait behind Events. When the queue is
full (an API server far behind), new Events are dropped and counted: an Event is never worth
failing or delaying the work it describes, and writing one never raises.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from vk_trio.errors import KubeError, NotFound
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import ObjectMeta, ObjectReference, Pod
from vk_trio.kube.resources import EVENTS
from vk_trio.logs import get_logger, scrub
from vk_trio.pacing import TokenBucket

AGGREGATE_WINDOW = 600.0  # seconds, on trio's clock
EVENT_QPS = 25.0
EVENT_BURST = 100
QUEUE_SIZE = 2000
MAX_REMEMBERED = 4096
NORMAL = "Normal"
WARNING = "Warning"

_log = get_logger("vk_trio.kube.events")


@dataclass
class _Seen:
    name: str
    count: int
    first: datetime
    at: float


def pod_reference(pod: Pod, field_path: str = "") -> ObjectReference:
    return ObjectReference(
        api_version="v1",
        kind="Pod",
        name=pod.metadata.name,
        namespace=pod.metadata.namespace,
        uid=pod.metadata.uid,
        resource_version=pod.metadata.resource_version,
        field_path=field_path,
    )


@dataclass(frozen=True)
class _Pending:
    ref: ObjectReference
    type: str
    reason: str
    message: str


class EventRecorder:
    """Writes Events with source component ``vk-trio`` and host = the node name.

    Without a running ``run`` task (unit tests, tools) ``record`` writes directly.
    """

    def __init__(
        self, client: KubeClient, *, component: str, host: str, qps: float = EVENT_QPS
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.limiter = TokenBucket(qps=qps, burst=EVENT_BURST)
        self.dropped = 0
        self._seen: OrderedDict[tuple[str, str, str, str], _Seen] = OrderedDict()  # LRU
        self._send: trio.MemorySendChannel[_Pending] | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write queued Events until cancelled."""
        send, receive = trio.open_memory_channel[_Pending](QUEUE_SIZE)
        self._send = send
        task_status.started()
        try:
            async for item in receive:
                await self._write(item)
        finally:
            self._send = None

    async def record(self, ref: ObjectReference, *, type: str, reason: str, message: str) -> None:
        item = _Pending(ref, type, reason, scrub(message)[:1024])
        if self._send is None:
            await self._write(item)
            return
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.dropped += 1
        await trio.lowlevel.checkpoint()

    async def _write(self, item: _Pending) -> None:
        ref, type, reason, message = item.ref, item.type, item.reason, item.message
        namespace = ref.namespace or "default"  # a Node's Events live in default
        key = (ref.uid or f"{ref.namespace}/{ref.name}", type, reason, message)
        now = datetime.now(UTC).replace(microsecond=0)
        seen = self._seen.get(key)
        try:
            if seen is not None and trio.current_time() - seen.at < AGGREGATE_WINDOW:
                seen.count += 1
                seen.at = trio.current_time()
                self._seen.move_to_end(key)
                try:
                    await self._bump(namespace, seen, now)
                    return
                except NotFound:
                    pass  # the Event expired (TTL 1h by default): write a new one
            name = f"{ref.name}.{secrets.token_hex(8)}"
            body = {
                "metadata": ObjectMeta(name=name, namespace=namespace),
                "involvedObject": ref,
                "reason": reason,
                "message": message,
                "type": type,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component,
                "reportingInstance": self.host,
                "action": reason,
            }
            await self.client.create(EVENTS, body, namespace=namespace, limiter=self.limiter)
            self._remember(key, _Seen(name=name, count=1, first=now, at=trio.current_time()))
        except KubeError as exc:
            _log.warning(
                "could not record event %s on %s/%s: %s", reason, ref.namespace, ref.name, exc
            )

    async def _bump(self, namespace: str, seen: _Seen, now: datetime) -> None:
        await self.client.patch(
            EVENTS,
            seen.name,
            {"count": seen.count, "lastTimestamp": now},
            namespace=namespace,
            limiter=self.limiter,
        )

    def _remember(self, key: tuple[str, str, str, str], seen: _Seen) -> None:
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen.popitem(last=False)  # the least recently used
        self._seen[key] = seen
        self._seen.move_to_end(key)

    async def normal(self, pod: Pod, reason: str, message: str) -> None:
        await self.record(pod_reference(pod), type=NORMAL, reason=reason, message=message)

    async def warning(self, pod: Pod, reason: str, message: str) -> None:
        await self.record(pod_reference(pod), type=WARNING, reason=reason, message=message)
