"""The work queue under random interleavings of add, add_after and done, slow and fast keys.

Each example runs a trio loop on a MockClock that this test drives itself: whenever every task
is blocked it checks the invariants, then jumps the clock to the next deadline. So the checks
see every state the queue can rest in, not a sample of them:

* no ready key waits while a worker is idle, and no key stays due while a worker is idle;
* a key is held by at most one worker at a time;
* nothing is forgotten: every add is followed by a run of that key that started no earlier
  (a key added while held is dirty and runs again), every add_after by a run no earlier than
  the add_after itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vk_trio.pods.queue import WorkQueue

KEYS = ("a", "b", "c", "d", "e", "f")


@dataclass(frozen=True)
class Op:
    at: float  # seconds after the start
    key: str
    delay: float | None  # None: add; else add_after(key, delay)


ops = st.lists(
    st.builds(
        Op,
        at=st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.5, 3.0, 7.0]),
        key=st.sampled_from(KEYS),
        delay=st.none() | st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
    ),
    max_size=30,
)
durations = st.fixed_dictionaries({k: st.sampled_from([0.0, 0.2, 1.0, 4.0]) for k in KEYS})


@dataclass
class Trace:
    held: set[str] = field(default_factory=set)
    busy: int = 0
    starts: list[tuple[str, float]] = field(default_factory=list)
    adds: list[tuple[str, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def scenario(
    clock: trio.testing.MockClock, plan: list[Op], took: dict[str, float], workers: int
) -> Trace:
    queue = WorkQueue()
    trace = Trace()
    origin = trio.current_time()

    async def worker(key: str) -> None:
        now = trio.current_time() - origin
        if key in trace.held:
            trace.problems.append(f"{key} held by two workers at {now}")
        trace.held.add(key)
        trace.busy += 1
        trace.starts.append((key, now))
        try:
            await trio.sleep(took[key])
        finally:
            trace.held.discard(key)
            trace.busy -= 1

    async def feed() -> None:
        for op in sorted(plan, key=lambda op: op.at):
            await trio.sleep_until(origin + op.at)
            trace.adds.append((op.key, op.at))
            if op.delay is None:
                queue.add(op.key)
            else:
                queue.add_after(op.key, op.delay)

    def check() -> None:
        now = trio.current_time()
        idle = workers - trace.busy
        if idle and queue._ready:
            trace.problems.append(f"{list(queue._ready)} ready, {idle} idle at {now - origin}")
        due = [k for k, when in queue._due.items() if when <= now]
        if idle and due:
            trace.problems.append(f"{due} due, {idle} idle at {now - origin}")

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: queue.run_workers(worker, count=workers, task_status=task_status)
        )
        nursery.start_soon(feed)
        while True:
            await trio.testing.wait_all_tasks_blocked()
            check()
            wait = trio.lowlevel.current_statistics().seconds_to_next_deadline
            if wait == math.inf:
                break
            clock.jump(wait)
        nursery.cancel_scope.cancel()
    return trace


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=ops, took=durations, workers=st.integers(min_value=1, max_value=4))
def test_no_ready_key_waits_while_a_worker_idles_and_none_is_forgotten(
    plan: list[Op], took: dict[str, float], workers: int
) -> None:
    clock = trio.testing.MockClock()
    trace = trio.run(scenario, clock, plan, took, workers, clock=clock)
    assert trace.problems == []
    for key, at in trace.adds:
        later = [t for k, t in trace.starts if k == key and t >= at]
        assert later, f"{key} added at {at} never ran afterwards: {trace.starts}"
