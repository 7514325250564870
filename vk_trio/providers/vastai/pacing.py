"""Spacing our calls so Vast.ai never has to refuse them, and backing off when it still does.

Vast.ai limits each endpoint to one call per "threshold" seconds per caller (create 4.5 s,
show 2 s, list 1 s, destroy 3 s, start/stop/label 1 s, the offer search 10 a minute) and answers
a faster call with a 429 that has no Retry-After. One ``Pacer`` per client keeps a turn per
endpoint: a call waits until the endpoint's interval has passed since the previous answer was
*received*. Since the server received the previous call before we received its answer, the gap
the server sees is never shorter than the interval, whatever the network does.

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
MARGIN = 0.05  # seconds added to every interval (clock granularity)
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
        """Hold the endpoint for one call; the next may start one interval after it ends."""
        lock = self._locks.setdefault(endpoint, trio.Lock())
        async with lock:
            await trio.sleep_until(self._next.get(endpoint, 0.0))
            try:
                yield
            finally:
                earliest = trio.current_time() + self.interval(endpoint) + MARGIN
                self._next[endpoint] = max(self._next.get(endpoint, 0.0), earliest)

    def refused(self, endpoint: str, attempt: int) -> None:
        """A 429: push the endpoint's next turn out (exponential, jittered, capped)."""
        base = max(self.interval(endpoint), MIN_BACKOFF)
        delay = min(MAX_BACKOFF, base * 1.5**attempt) * self._random.uniform(1.0, 1.25)
        self._next[endpoint] = max(self._next.get(endpoint, 0.0), trio.current_time() + delay)

    def delay(self, endpoint: str, attempt: int) -> float:
        """Backoff before retrying a 5xx or a broken connection."""
        return float(min(MAX_BACKOFF, max(self.interval(endpoint), MIN_BACKOFF) * 2.0**attempt))
