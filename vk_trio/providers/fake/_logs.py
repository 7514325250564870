"""A fake container's log, as ``kubectl logs`` would show it at this moment (or followed).

Lines appear on the instance's own schedule (``log_schedule``), so a test on virtual time sees
them arrive one by one; the kubelet's options are honoured the way the kubelet does: since and
tail pick the first line, ``limit_bytes`` cuts the stream (mid-line if it must), and ``follow``
waits on trio time until the container can print nothing more.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncGenerator, Callable

import trio

from vk_trio.providers.base import LogLine, LogOptions
from vk_trio.providers.fake._store import Record
from vk_trio.providers.fake._workload import ended_at, log_schedule, to_datetime

# How often a followed log re-reads the books when no line is due (a delete may come any time).
FOLLOW_POLL_SECONDS = 1.0


async def stream_logs(
    record: Record,
    opts: LogOptions,
    *,
    clock: Callable[[], float],
    reload: Callable[[], Record | None],
) -> AsyncGenerator[LogLine, None]:
    """Yield what ``record``'s container printed; ``reload`` re-reads it (None once gone)."""
    schedule = log_schedule(record.workload, created_at=record.created_at)
    times = [t for t, _ in schedule]
    now = clock()
    printed = _printed(times, record, now)
    sent = 0
    if opts.since_seconds is not None:
        sent = bisect.bisect_left(times, now - opts.since_seconds, hi=printed)
    if opts.tail_lines is not None:
        sent = max(sent, printed - opts.tail_lines)
    budget = opts.limit_bytes
    while True:
        for t, text in schedule[sent:printed]:
            stamp = to_datetime(t) if opts.timestamps else None
            if budget is not None:
                data = text.encode()
                if len(data) + 1 > budget:  # the line and its newline do not fit: cut, stop
                    if cut := data[:budget].decode(errors="ignore"):
                        yield LogLine(text=cut, timestamp=stamp)
                    return
                budget -= len(data) + 1
            yield LogLine(text=text, timestamp=stamp)
            if budget == 0:
                return
        sent = printed
        if not opts.follow or _done(record, printed=printed, total=len(schedule), now=now):
            return
        due = times[printed] - now if printed < len(times) else FOLLOW_POLL_SECONDS
        await trio.sleep(min(max(due, 1e-3), FOLLOW_POLL_SECONDS))
        refreshed = reload()
        if refreshed is None:
            return
        record, now = refreshed, clock()
        printed = _printed(times, record, now)


def _printed(times: list[float], record: Record, now: float) -> int:
    """How many lines the container printed by ``now`` (nothing more once deleted)."""
    if record.delete_requested_at is not None:
        now = min(now, record.delete_requested_at)
    return bisect.bisect_right(times, now)


def _done(record: Record, *, printed: int, total: int, now: float) -> bool:
    """A followed log ends when the container can print nothing more."""
    if record.delete_requested_at is not None:
        return True
    end = ended_at(record.workload, created_at=record.created_at)
    return end is not None and now >= end and printed == total
