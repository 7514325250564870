"""Backoff and rate limiting, shared by every client that talks to someone else's server.

The kube client, the pod work queue and the cloud clients all need the same two things: a
token bucket that keeps us under a request rate, and an exponential backoff that yields to a
server's own ``Retry-After``. Both read time from trio's clock, so tests run them on virtual time
(``autojump_clock``) without sleeping for real.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import trio


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff: ``initial * factor**attempt``, capped at ``maximum``, with jitter.

    ``delay(attempt, retry_after=...)`` returns the server's Retry-After when it gave one (never
    less, capped at ``retry_after_cap`` so a hostile header cannot park us for a day).
    """

    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1  # fraction of the delay, added or removed at random
    retry_after_cap: float = 300.0

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_cap)
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt))
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, min(base, self.maximum))


class TokenBucket:
    """A token bucket: ``qps`` tokens a second, at most ``burst`` saved up.

    ``acquire()`` waits until a token is free. Waiters are served in arrival order (trio.Lock is
    fair), so one busy caller cannot starve the others. ``qps <= 0`` disables limiting.
    """

    def __init__(self, *, qps: float, burst: int) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock = trio.Lock()

    def _refill(self, now: float) -> None:
        if self._stamp is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.qps)
        self._stamp = now

    async def acquire(self) -> None:
        if self.qps <= 0:
            await trio.lowlevel.checkpoint()
            return
        async with self._lock:
            self._refill(trio.current_time())
            if self._tokens < 1:
                await trio.sleep((1 - self._tokens) / self.qps)
                self._refill(trio.current_time())
            self._tokens -= 1
