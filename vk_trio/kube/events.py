"""Kubernetes Events for the pods we run, coalesced and aggregated the way the kubelet does it.

A user's first question is ``kubectl describe pod``; Events are where we answer it. They must
never slow the pods down, nor flood the API server, so recording follows the kubelet's event
broadcaster and correlator (client-go tools/record):

* **Off the pods' path.** ``record`` only queues; a background task (``run``) writes at a rate of
  its own (``EVENT_QPS``/``EVENT_BURST``, outside the client's main budget), so pod status writes
  never wait behind Events. When the queue is full (an API server far behind), new Events are
  dropped and counted: an Event is never worth failing or delaying the work it describes, and
  writing one never raises.
* **Coalesced.** A repeat of an Event (same object, type, reason and message) still waiting in
  the queue is not queued again: its count grows, and one write carries it. A repeat of one
  already written within ``AGGREGATE_WINDOW`` bumps that Event's ``count`` and
  ``lastTimestamp`` (one PATCH) instead of creating another.
* **Similar ones aggregated.** After ``SIMILAR_LIMIT`` Events of one object, type and reason with
  different messages within ``AGGREGATE_WINDOW``, further ones become a single Event whose
  message says ``(combined from similar events): <the latest>``.
* **Spam-filtered.** Each object gets a token bucket (``SPAM_BURST`` Events, one more every
  ``SPAM_REFILL`` seconds): a pod stuck in a loop cannot write thousands of Events.

At a burst's scale the cost is a handful of Events per pod on the way to Running (Scheduled,
Created, Started) at ``EVENT_QPS``: bench/README.md gives the floor and what is measured.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from vk_trio.errors import KubeError, NotFound
from vk_trio.faults import FaultLog
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import ObjectMeta, ObjectReference, Pod
from vk_trio.kube.resources import EVENTS
from vk_trio.logs import get_logger, scrub
from vk_trio.pacing import TokenBucket

AGGREGATE_WINDOW = 600.0  # seconds, on trio's clock
SIMILAR_LIMIT = 10  # the kubelet's maxSimilarEvents
SIMILAR_PREFIX = "(combined from similar events): "
SPAM_BURST = 25  # the kubelet's spam filter: per object, 25 at once ...
SPAM_REFILL = 300.0  # ... then one every five minutes
EVENT_QPS = 25.0
EVENT_BURST = 100
QUEUE_SIZE = 10_000  # a burst of 1,000 pods queues about 3,000 (Scheduled, Created, Started)
MAX_REMEMBERED = 4096
NORMAL = "Normal"
WARNING = "Warning"

_log = get_logger("vk_trio.kube.events")
_faults = FaultLog()

Key = tuple[str, str, str, str]  # (object, type, reason, message)


@dataclass
class _Seen:
    name: str
    count: int
    first: datetime
    at: float


@dataclass
class _Pending:
    ref: ObjectReference
    type: str
    reason: str
    message: str
    count: int = 1


@dataclass
class _Similar:
    messages: set[str]
    since: float


def _key_message(message: str) -> str:
    """Combined Events are one Event whatever their latest message says."""
    return SIMILAR_PREFIX if message.startswith(SIMILAR_PREFIX) else message


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
        self.dropped = 0  # queue full
        self.filtered = 0  # over an object's spam budget
        self.coalesced = 0  # repeats carried by a write already queued
        self._seen: OrderedDict[Key, _Seen] = OrderedDict()  # LRU of Events written
        self._similar: OrderedDict[tuple[str, str, str], _Similar] = OrderedDict()
        self._spam: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, stamp
        self._queue: OrderedDict[Key, _Pending] = OrderedDict()
        self._wake = trio.Event()
        self._running = False
        self._paid = TokenBucket(qps=0, burst=1)  # for a write whose token ``run`` took

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write queued Events until cancelled."""
        self._running = True
        task_status.started()
        try:
            while True:
                while not self._queue:
                    self._wake = trio.Event()
                    await self._wake.wait()
                await self.limiter.acquire()  # repeats keep coalescing while we wait our turn
                _, item = self._queue.popitem(last=False)
                await self._write(item, limiter=self._paid)
        finally:
            self._running = False

    async def record(self, ref: ObjectReference, *, type: str, reason: str, message: str) -> None:
        obj = ref.uid or f"{ref.namespace}/{ref.name}"
        text = self._aggregate(obj, type, reason, scrub(message, pod_uid=ref.uid or None)[:1024])
        key = (obj, type, reason, _key_message(text))
        waiting = self._queue.get(key) if self._running else None
        if waiting is not None:  # the same Event is waiting: one write carries both
            waiting.count += 1
            waiting.message = text
            self.coalesced += 1
        elif not self._allowed(obj):
            self.filtered += 1
        elif not self._running:
            await self._write(_Pending(ref, type, reason, text))
            return
        elif len(self._queue) >= QUEUE_SIZE:
            self.dropped += 1
        else:
            self._queue[key] = _Pending(ref, type, reason, text)
            self._wake.set()
        await trio.lowlevel.checkpoint()

    def _aggregate(self, obj: str, type: str, reason: str, message: str) -> str:
        """The message to record: past ``SIMILAR_LIMIT`` different messages of one object,
        type and reason, they collapse into one Event (the kubelet's EventAggregator)."""
        key = (obj, type, reason)
        now = trio.current_time()
        similar = self._similar.get(key)
        if similar is None or now - similar.since > AGGREGATE_WINDOW:
            similar = _Similar(messages=set(), since=now)
        self._similar[key] = similar
        self._similar.move_to_end(key)
        if len(self._similar) > MAX_REMEMBERED:
            self._similar.popitem(last=False)
        if message in similar.messages or len(similar.messages) < SIMILAR_LIMIT:
            similar.messages.add(message)
            return message
        return (
            SIMILAR_PREFIX
            + message.rsplit(SIMILAR_PREFIX, maxsplit=1)[-1][: 1024 - len(SIMILAR_PREFIX)]
        )

    def _allowed(self, obj: str) -> bool:
        """The object's spam budget (the kubelet's EventSourceObjectSpamFilter)."""
        now = trio.current_time()
        tokens, stamp = self._spam.get(obj, (float(SPAM_BURST), now))
        tokens = min(float(SPAM_BURST), tokens + (now - stamp) / SPAM_REFILL)
        allowed = tokens >= 1
        self._spam[obj] = (tokens - 1 if allowed else tokens, now)
        self._spam.move_to_end(obj)
        if len(self._spam) > MAX_REMEMBERED:
            self._spam.popitem(last=False)
        return allowed

    async def _write(self, item: _Pending, *, limiter: TokenBucket | None = None) -> None:
        ref, type, reason, message = item.ref, item.type, item.reason, item.message
        namespace = ref.namespace or "default"  # a Node's Events live in default
        key = (ref.uid or f"{ref.namespace}/{ref.name}", type, reason, _key_message(message))
        now = datetime.now(UTC).replace(microsecond=0)
        limiter = limiter or self.limiter
        seen = self._seen.get(key)
        try:
            if seen is not None and trio.current_time() - seen.at < AGGREGATE_WINDOW:
                seen.count += item.count
                seen.at = trio.current_time()
                self._seen.move_to_end(key)
                try:
                    await self._bump(namespace, seen, now, message, limiter)
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
                "count": item.count,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component,
                "reportingInstance": self.host,
                "action": reason,
            }
            await self.client.create(EVENTS, body, namespace=namespace, limiter=limiter)
            self._remember(
                key, _Seen(name=name, count=item.count, first=now, at=trio.current_time())
            )
        except Exception as exc:  # an Event is never worth stopping the recorder for
            what = f"recording event {reason} on {ref.namespace}/{ref.name}"
            _faults.failed("write", exc, log=_log, what=what, routine=KubeError)

    async def _bump(
        self, namespace: str, seen: _Seen, now: datetime, message: str, limiter: TokenBucket
    ) -> None:
        patch: dict[str, object] = {"count": seen.count, "lastTimestamp": now}
        if message.startswith(SIMILAR_PREFIX):
            patch["message"] = message  # a combined Event shows the latest of them
        await self.client.patch(EVENTS, seen.name, patch, namespace=namespace, limiter=limiter)

    def _remember(self, key: Key, seen: _Seen) -> None:
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen.popitem(last=False)  # the least recently used
        self._seen[key] = seen
        self._seen.move_to_end(key)

    async def normal(self, pod: Pod, reason: str, message: str) -> None:
        await self.record(pod_reference(pod), type=NORMAL, reason=reason, message=message)

    async def warning(self, pod: Pod, reason: str, message: str) -> None:
        await self.record(pod_reference(pod), type=WARNING, reason=reason, message=message)
