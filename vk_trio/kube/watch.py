"""List, then watch: a change feed that never delivers an event twice and never skips one.

The discipline is client-go's reflector:
1. LIST (paginated) and hand the whole set to the consumer as ``Synced``: the consumer replaces
   its cache, so objects deleted while we were not watching disappear too.
2. WATCH from the list's resourceVersion with ``allowWatchBookmarks``; remember the newest
   resourceVersion seen (events and bookmarks).
3. When the stream ends or breaks, watch again from that resourceVersion after a backoff, so no
   event is lost; events at or below it are dropped, so none is delivered twice.
4. When the server says the resourceVersion is too old (HTTP 410, or an ERROR event with code
   410), go back to 1.

The consumer is a callback, not an async generator, so cancellation stays structured.

One object is never allowed to stop the feed: an object the model cannot decode is listed in
``Synced.unreadable`` (its metadata, so a consumer knows it exists) or, in a watch event,
skipped with a log line; a fault of the consumer's own on one event is logged (once, with its
traceback) and the feed goes on. Without that, the same event is sent again after every
reconnect, and every object behind it waits forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec
import trio

from vk_trio.errors import Gone, InvalidInput, KubeError, KubeStatusError, KubeTransportError
from vk_trio.faults import FaultLog
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import ObjectMeta, Status, WatchEvent
from vk_trio.kube.resources import Resource
from vk_trio.logs import get_logger
from vk_trio.pacing import Backoff

T = TypeVar("T")

WATCH_TIMEOUT_SECONDS = 290  # server-side; a little under the apiserver's 5-minute cap
READ_SLACK_SECONDS = 30  # a stream silent for longer than timeout+slack is dead
_raw_event = msgspec.json.Decoder(WatchEvent[msgspec.Raw])
_status = msgspec.json.Decoder(Status)
_log = get_logger("vk_trio.kube.watch")
_faults = FaultLog()


class _MetadataOnly(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


_metadata = msgspec.json.Decoder(_MetadataOnly)


@dataclass(frozen=True, slots=True)
class Synced(Generic[T]):
    """The complete current set, after a (re)list. Replace the cache with it.

    ``unreadable``: objects that exist but do not decode as the model (their metadata, and why).
    """

    items: list[T]
    resource_version: str
    unreadable: tuple[tuple[ObjectMeta, InvalidInput], ...] = ()


@dataclass(frozen=True, slots=True)
class Changed(Generic[T]):
    """One change: ``type`` is ADDED, MODIFIED or DELETED."""

    type: str
    object: T
    resource_version: str


Handler = Callable[[Synced[T] | Changed[T]], Awaitable[None]]


@dataclass(slots=True)
class _Cursor:
    """The newest resourceVersion seen; outlives a stream that breaks mid-body."""

    resource_version: str


@dataclass(slots=True)
class WatchStats:
    lists: int = 0
    watches: int = 0
    events: int = 0
    duplicates_dropped: int = 0
    restarts: int = 0  # reconnects after a broken or ended stream
    relists_after_gone: int = 0
    unreadable: int = 0  # objects that did not decode (listed or watched)
    handler_faults: int = 0  # events the consumer failed on (logged, skipped)


def _retry_after(exc: Exception) -> float | None:
    return exc.retry_after if isinstance(exc, KubeStatusError) else None


def _rv(value: str) -> int:
    """etcd resourceVersions are integers; order by them (unknown shapes sort first)."""
    try:
        return int(value)
    except ValueError:
        return -1


async def watch_resource(
    client: KubeClient,
    resource: Resource[T],
    handler: Handler[T],
    *,
    namespace: str | None = None,
    field_selector: str = "",
    label_selector: str = "",
    backoff: Backoff | None = None,
    stats: WatchStats | None = None,
    timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: list, watch, resume, relist. ``started`` fires after the first Synced."""
    backoff = backoff or Backoff(initial=0.5, maximum=30.0)
    stats = stats if stats is not None else WatchStats()
    decoder = msgspec.json.Decoder(resource.model)
    started = False
    failures = 0
    gone_in_a_row = 0  # 410s in a row with nothing delivered between the relist and the 410
    while True:
        if gone_in_a_row > 1:  # the first 410 relists at once; repeated ones back off
            await trio.sleep(backoff.delay(gone_in_a_row - 2))
        unreadable: list[tuple[ObjectMeta, InvalidInput]] = []
        try:
            listed = await client.list(
                resource,
                namespace=namespace,
                field_selector=field_selector,
                label_selector=label_selector,
                unreadable=unreadable,
            )
        except (KubeError, InvalidInput) as exc:
            await trio.sleep(backoff.delay(failures, retry_after=_retry_after(exc)))
            failures += 1
            continue
        stats.lists += 1
        stats.unreadable += len(unreadable)
        for meta, why in unreadable:
            _faults.report(
                f"{resource.plural}/{meta.uid}", why, log=_log, what="decoding", traceback=False
            )
        cursor = _Cursor(listed.metadata.resource_version)
        try:
            await handler(Synced(listed.items, cursor.resource_version, tuple(unreadable)))
        except Exception as exc:  # the consumer's fault: logged; the watch goes on
            stats.handler_faults += 1
            _faults.report(f"synced/{resource.plural}", exc, log=_log, what="handling a list")
        if not started:
            task_status.started()
            started = True
        failures = 0
        listed_at = (stats.events, cursor.resource_version)
        while True:
            try:
                await _watch_once(
                    client,
                    resource,
                    handler,
                    decoder,
                    cursor=cursor,
                    namespace=namespace,
                    field_selector=field_selector,
                    label_selector=label_selector,
                    stats=stats,
                    timeout_seconds=timeout_seconds,
                )
                failures = 0  # a stream that ended normally (server timeout) is no failure
            except Gone:
                stats.relists_after_gone += 1
                stale = listed_at == (stats.events, cursor.resource_version)
                gone_in_a_row = gone_in_a_row + 1 if stale else 1
                break
            except KubeError as exc:
                await trio.sleep(backoff.delay(failures, retry_after=_retry_after(exc)))
                failures += 1
            stats.restarts += 1


async def _watch_once(
    client: KubeClient,
    resource: Resource[T],
    handler: Handler[T],
    decoder: msgspec.json.Decoder[T],
    *,
    cursor: _Cursor,
    namespace: str | None,
    field_selector: str,
    label_selector: str,
    stats: WatchStats,
    timeout_seconds: int,
) -> None:
    """One watch stream; ``cursor`` follows every event and bookmark, even if it breaks."""
    params: dict[str, str | int | bool] = {
        "watch": True,
        "allowWatchBookmarks": True,
        "resourceVersion": cursor.resource_version,
        "timeoutSeconds": timeout_seconds,
    }
    if field_selector:
        params["fieldSelector"] = field_selector
    if label_selector:
        params["labelSelector"] = label_selector
    stats.watches += 1
    async with client.stream(
        resource.path(namespace=namespace),
        params=params,
        read_timeout=timeout_seconds + READ_SLACK_SECONDS,
    ) as response:
        try:
            buffer = b""
            async with aclosing(response.aiter_raw()) as chunks:
                async for chunk in chunks:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            cursor.resource_version = await _deliver(
                                line,
                                handler,
                                decoder,
                                last_rv=cursor.resource_version,
                                stats=stats,
                            )
        except KubeError:
            raise
        except Exception as exc:  # httpx2 stream errors surface here mid-body
            raise KubeTransportError(f"watch {resource.plural} broke: {exc!r}") from exc


async def _deliver(
    line: bytes,
    handler: Handler[T],
    decoder: msgspec.json.Decoder[T],
    *,
    last_rv: str,
    stats: WatchStats,
) -> str:
    try:
        event = _raw_event.decode(line)
    except msgspec.MsgspecError as exc:
        raise KubeTransportError(f"undecodable watch line: {exc}") from exc
    if event.type == "ERROR":
        status = _status.decode(event.object)
        if status.code == 410:
            raise Gone(status.message, reason=status.reason)
        raise KubeTransportError(f"watch error {status.code}: {status.message}")
    if event.type == "BOOKMARK":  # an object with metadata only: the rest would not decode
        try:
            mark = _metadata.decode(event.object).metadata.resource_version
        except (msgspec.MsgspecError, RecursionError) as exc:
            raise KubeTransportError(f"undecodable watch bookmark: {exc}") from exc
        return mark if _rv(mark) > _rv(last_rv) else last_rv
    try:
        obj = decoder.decode(event.object)
    except (msgspec.MsgspecError, RecursionError) as exc:
        return _skip_undecodable(event, exc, last_rv=last_rv, stats=stats)
    rv: str = obj.metadata.resource_version  # type: ignore[attr-defined]
    if _rv(rv) <= _rv(last_rv) and _rv(rv) >= 0:
        stats.duplicates_dropped += 1
        return last_rv
    stats.events += 1
    try:
        await handler(Changed(event.type, obj, rv))
    except Exception as exc:  # the consumer's fault on one event must not stall the feed
        stats.handler_faults += 1
        uid = obj.metadata.uid  # type: ignore[attr-defined]
        _faults.report(f"handler/{uid}", exc, log=_log, what=f"handling a {event.type} event")
    return rv


def _skip_undecodable(
    event: WatchEvent[msgspec.Raw], exc: BaseException, *, last_rv: str, stats: WatchStats
) -> str:
    """Log an object we cannot decode and move past it (its resourceVersion, when readable)."""
    stats.unreadable += 1
    try:
        meta = _metadata.decode(event.object).metadata
    except (msgspec.MsgspecError, RecursionError):
        meta = ObjectMeta()
    why = InvalidInput(f"watch {event.type} {meta.namespace}/{meta.name}: does not decode: {exc}")
    _faults.report(f"watch/{meta.uid}", why, log=_log, what="decoding", traceback=False)
    rv = meta.resource_version
    return rv if _rv(rv) > _rv(last_rv) else last_rv
