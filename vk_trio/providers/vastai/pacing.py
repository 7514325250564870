"""Spacing our calls so Vast.ai never has to refuse them, and backing off when it still does.

Vast.ai limits each endpoint to one call per "threshold" seconds per caller (create 4.5 s,
show 2 s, list 1 s, destroy 3 s, start/stop/label 1 s, the offer search 10 a minute) and answers
a faster call with a 429 that has no Retry-After. One ``Pacer`` per client keeps a turn per
endpoint: a call may be sent once the endpoint's interval (plus a margin for the network's
jitter) has passed since the previous call was *sent*, whether or not that one was answered yet.
The server counts from the arrival of each request, and a create that takes two seconds to
answer must not cost the next create two more: pacing from the previous answer made 200
creates take 6.5 s each instead of 4.5 (bench/cloud_latency.py).

A 429 still happens (another client on the same account, a limit lower than documented); then
the endpoint's next turn moves out by a growing, jittered delay, for every caller of it at once.
Backoffs grow from the endpoint's own interval, so shrinking the intervals (tests against a
simulator with shrunk limits) shrinks them too; with Vast.ai's intervals they start at 1 s or more.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio

DEFAULT_INTERVALS: dict[str, float] = {
    "create": 4.5,
    "show": 2.0,
    "list": 1.0,
    "destroy": 3.0,
    "manage": 1.0,
    "search": 6.0,  # 10 a minute
    "logs": 1.0,
}
MARGIN = 0.2  # seconds added to every interval (clock granularity, the network's jitter)
MAX_BACKOFF = 60.0
MIN_BACKOFF = 0.05  # seconds: the first backoff of an endpoint paced at (almost) no interval


class Pacer:
    """Per-endpoint turns; ``intervals`` overrides ``DEFAULT_INTERVALS`` (tests shrink them)."""

    def __init__(self, intervals: Mapping[str, float] | None = None) -> None:
        self.intervals = {**DEFAULT_INTERVALS, **(intervals or {})}
        self._locks: dict[str, trio.Lock] = {}
        self._next: dict[str, float] = {}
        self._random = random.Random()

    def interval(self, endpoint: str) -> float:
        return float(self.intervals.get(endpoint, 1.0))

    @asynccontextmanager
    async def turn(self, endpoint: str) -> AsyncIterator[None]:
        """Wait for the endpoint's turn and send within it; the next turn comes one interval
        after this one began (callers wait in arrival order: trio.Lock is fair)."""
        lock = self._locks.setdefault(endpoint, trio.Lock())
        async with lock:
            await trio.sleep_until(self._next.get(endpoint, 0.0))
            earliest = trio.current_time() + self.interval(endpoint) + MARGIN
            self._next[endpoint] = max(self._next.get(endpoint, 0.0), earliest)
        yield

    def next_turn(self, endpoint: str) -> float:
        """Trio time at which the endpoint's next call may go (in the past: now)."""
        return self._next.get(endpoint, 0.0)

    def refused(self, endpoint: str, attempt: int) -> None:
        """A 429: push the endpoint's next turn out (exponential, jittered, capped)."""
        base = max(self.interval(endpoint), MIN_BACKOFF)
        delay = min(MAX_BACKOFF, base * 1.5**attempt) * self._random.uniform(1.0, 1.25)
        self._next[endpoint] = max(self._next.get(endpoint, 0.0), trio.current_time() + delay)

    def delay(self, endpoint: str, attempt: int) -> float:
        """Backoff before retrying a 5xx or a broken connection."""
        return float(min(MAX_BACKOFF, max(self.interval(endpoint), MIN_BACKOFF) * 2.0**attempt))
