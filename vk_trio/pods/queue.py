"""A keyed work queue: each pod is worked on by one worker at a time, and never forgotten.

Semantics (client-go's workqueue, minus its failure modes):
* ``add(key)`` is deduplicated: a key already waiting is not queued twice;
* a key added while a worker holds it is marked dirty and queued again when the worker is done,
  so the newest state is always reconciled after the change that triggered it;
* ``add_after(key, delay)`` schedules a retry (backoff, restart delays, polling a deletion);
  an earlier plain ``add`` still wins;
* no retry budget: a key is never dropped because it failed too often (the VK library's
  "Pending/ProviderFailed forever" bug comes from exactly that).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Awaitable, Callable

import trio

Worker = Callable[[str], Awaitable[None]]


class WorkQueue:
    def __init__(self) -> None:
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = 0
        self._wakeup = trio.Event()
        self._closing = False
        self._idle = trio.Event()

    def __len__(self) -> int:
        return len(self._queued) + len(self._due)

    def add(self, key: str) -> None:
        self._due.pop(key, None)
        if key in self._active:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._wake()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        when = trio.current_time() + delay
        if key in self._queued or self._due.get(key, math.inf) <= when:
            return
        self._due[key] = when
        self._seq += 1
        heapq.heappush(self._delayed, (when, self._seq, key))
        self._wake()

    def _wake(self) -> None:
        self._wakeup.set()

    def _promote_due(self) -> float:
        """Move due delayed keys to the ready queue; return the next due time."""
        now = trio.current_time()
        while self._delayed:
            when, _, key = self._delayed[0]
            if self._due.get(key) != when:
                heapq.heappop(self._delayed)  # superseded
                continue
            if when > now:
                return when
            heapq.heappop(self._delayed)
            del self._due[key]
            self.add(key)
        return math.inf

    async def get(self) -> str:
        while True:
            if self._closing:
                await trio.sleep_forever()
            next_due = self._promote_due()
            if self._ready:
                key = self._ready.popleft()
                self._queued.discard(key)
                self._active.add(key)
                return key
            self._wakeup = trio.Event()
            with trio.move_on_at(next_due):
                await self._wakeup.wait()

    def done(self, key: str) -> None:
        self._active.discard(key)
        if not self._active:
            self._idle.set()
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    async def drain(self) -> None:
        """Hand out no more keys and wait until no key is being worked on (shutdown)."""
        self._closing = True
        self._wake()
        while self._active:
            self._idle = trio.Event()
            await self._idle.wait()

    async def run_workers(
        self,
        worker: Worker,
        *,
        count: int,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(self._work_loop, worker)
            task_status.started()

    async def _work_loop(self, worker: Worker) -> None:
        while True:
            key = await self.get()
            try:
                await worker(key)
            finally:
                self.done(key)
