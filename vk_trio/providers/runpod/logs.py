"""``kubectl logs`` of a RunPod pod, and the quick reads of a log's end for exit markers.

The v2 log stream (SSE) never ends by itself: a read without ``follow`` takes the backlog and
stops when the stream goes quiet (after ``idle_timeout`` without a line, ``first_timeout`` for
the first, or ``BACKLOG_SECONDS`` after the first line: a busy container's stream would never go
quiet); a followed stream that breaks is resumed from the last event id and ends with the pod,
or at the Job wrapper's marker. The wrapper's marker lines (those with the pod's nonce,
exit_marker.py) are vk-trio's bookkeeping and never shown; a program's own marker-like output is.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import trio

from vk_trio.providers import exit_marker
from vk_trio.providers.base import (
    LogLine,
    LogOptions,
    LogsUnavailable,
    ProviderUnavailable,
    RateLimited,
)
from vk_trio.providers.runpod import mapping
from vk_trio.providers.runpod.client import RunPodClient
from vk_trio.providers.runpod.exits import MAX_TAIL

MAX_RECONNECTS = 20  # a followed log stream that keeps breaking is given up
# A read without follow takes the backlog and stops: after ``idle_timeout`` without a line, or
# this long after the first line, whichever comes first. The v2 stream never ends and keeps
# sending a busy container's new lines, so an idle timeout alone would read a chatty Job to its
# end, and hold up every list() that looks for exit markers meanwhile (measured: 8 s).
BACKLOG_SECONDS = 2.0
MARKER_IDLE_SECONDS = 0.5  # a marker read stops when the stream is this quiet


class LogReader:
    def __init__(self, client: RunPodClient, *, first_timeout: float, idle_timeout: float) -> None:
        self.client = client
        self.first_timeout = first_timeout
        self.idle_timeout = idle_timeout

    async def logs(
        self,
        pod_id: str,
        opts: LogOptions,
        *,
        nonce: Callable[[str], Awaitable[str | None]],
    ) -> AsyncIterator[LogLine]:
        """The container's log lines; a followed Job stream ends at its exit marker.
        ``nonce``: finds the pod's wrapper nonce (its marker lines are not the user's)."""
        tail = MAX_TAIL if opts.tail_lines is None else min(opts.tail_lines, MAX_TAIL)
        since = None
        if opts.since_seconds is not None:
            when = datetime.now(UTC) - timedelta(seconds=opts.since_seconds)
            since = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        budget = opts.limit_bytes
        ours = await nonce(pod_id)
        lines = self.lines(pod_id, tail=tail, since=since, follow=opts.follow, nonce=ours)
        if not opts.follow:
            async with aclosing(lines) as backfill:
                collected = [item async for item in backfill]
            lines = _replay(collected[-tail:] if tail else [])
        async with aclosing(lines) as stream:
            async for text, stamp in stream:
                if ours is not None and exit_marker.parse(text, ours) is not None:
                    if opts.follow:
                        return  # the Job's program ended: so does the followed stream
                    continue  # the wrapper's line, not the program's output
                if budget is not None:
                    budget -= len(text.encode()) + 1
                    if budget < 0:
                        return
                yield LogLine(text=text, timestamp=stamp)

    async def lines(
        self,
        pod_id: str,
        *,
        tail: int,
        since: str | None = None,
        follow: bool,
        nonce: str | None = None,
        quick: bool = False,
    ) -> AsyncGenerator[tuple[str, datetime | None]]:
        """Container lines. Without ``follow`` it stops when the stream goes quiet (the v2
        stream never ends by itself; ``quick``: sooner, for marker reads); a followed stream
        that breaks is resumed from the last event id, and ends with the pod or at the Job's
        exit marker (``nonce``)."""
        first = MARKER_IDLE_SECONDS * 2 if quick else self.first_timeout
        idle = MARKER_IDLE_SECONDS if quick else self.idle_timeout
        last_id: str | None = None
        for _ in range(MAX_RECONNECTS):
            try:
                async with self.client.log_events(
                    pod_id, tail=tail, since=since, last_event_id=last_id
                ) as events:
                    wait, stop_at = first, math.inf
                    while True:
                        got = None
                        now = trio.current_time()
                        with trio.move_on_at(math.inf if follow else min(now + wait, stop_at)):
                            got = await anext(events, None)
                        if got is None:
                            break
                        event_id, event = got
                        last_id, wait = event_id or last_id, idle
                        if stop_at == math.inf:
                            stop_at = trio.current_time() + BACKLOG_SECONDS
                        yield event.line, mapping.parse_time(event.ts)
                        if follow and nonce and exit_marker.parse(event.line, nonce):
                            return
            except LogsUnavailable:
                if last_id is None:
                    raise
                return  # the pod is gone after we read from it: the stream is over
            except (ProviderUnavailable, RateLimited) as exc:
                if not follow:
                    raise
                await trio.sleep(exc.retry_after or 1.0)
                continue
            if not follow:
                return


async def _replay(
    items: list[tuple[str, datetime | None]],
) -> AsyncGenerator[tuple[str, datetime | None]]:
    for item in items:
        yield item
