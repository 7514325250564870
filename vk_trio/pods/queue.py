"""A keyed work queue: each pod is worked on by one worker at a time, and never forgotten.

Semantics (client-go's workqueue, minus its failure modes):
* ``add(key)`` is deduplicated: a key already waiting is not queued twice;
* a key added while a worker holds it is marked dirty and queued again when the worker is done,
  so the newest state is always reconciled after the change that triggered it;
* ``add_after(key, delay)`` schedules a retry (backoff, restart delays, polling a deletion);
  an earlier plain ``add`` still wins;
* no retry budget: a key is never dropped because it failed too often (the VK library's
  "Pending/ProviderFailed forever" bug comes from exactly that).

Waking workers. Idle workers park in a ``trio.lowlevel.ParkingLot`` (the primitive under
``trio.Condition``), and every key that becomes ready unparks exactly one of them, so a ready
key never waits while a worker is idle, and an add costs one wakeup rather than a herd of 256.
One idle worker at a time keeps the clock instead: it sleeps until the earliest delayed key is
due (``add_after`` moves its alarm earlier) and is woken for a ready key only when no other
worker is parked. (The first version gave each idle worker a fresh Event in one attribute, so
an add woke only the worker that went idle last: with one slow key in flight, every other key
waited for the next delayed key to fall due; issue 10.)
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
        self._parked = trio.lowlevel.ParkingLot()  # idle workers waiting for a ready key
        self._clock: trio.CancelScope | None = None  # the idle worker waiting for a due key
        self._summoned = False  # a parked worker was woken to keep the clock
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
            self._wake_one()

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
        if self._clock is not None:
            self._clock.deadline = min(self._clock.deadline, when)
        else:
            self._want_clock()

    def _wake_one(self) -> None:
        """A key became ready: one idle worker (if there is one) comes to take it."""
        if self._parked:
            self._parked.unpark()
        elif self._clock is not None:
            self._clock.cancel()
            self._clock = None  # it is on its way; it will not be counted twice

    def _want_clock(self) -> None:
        """Delayed keys need someone watching the clock: a parked worker takes the role."""
        if self._clock is None and not self._summoned and self._delayed and self._parked:
            self._summoned = True
            self._parked.unpark()

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

    def _take(self) -> str:
        key = self._ready.popleft()
        self._queued.discard(key)
        self._active.add(key)
        return key

    async def get(self) -> str:
        while True:
            if self._closing:
                await trio.sleep_forever()
            self._summoned = False  # whoever was woken for the clock is (or was) here
            next_due = self._promote_due()
            if self._ready:
                key = self._take()
                self._want_clock()  # it may have been the clock's keeper
                return key
            if self._clock is None:
                with trio.CancelScope(deadline=next_due) as clock:
                    self._clock = clock
                    try:
                        await trio.sleep_forever()
                    finally:
                        if self._clock is clock:
                            self._clock = None
            else:
                await self._parked.park()

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
        self._parked.unpark_all()
        if self._clock is not None:
            self._clock.cancel()
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
