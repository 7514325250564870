"""The keyed work queue: dedupe, one worker per key, redirty, delayed retries."""

from __future__ import annotations

import pytest
import trio

from vk_trio.pods.queue import WorkQueue


async def test_a_key_added_twice_is_worked_once() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"


async def test_a_key_added_while_held_is_worked_again_afterwards(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = WorkQueue()
    seen: list[str] = []
    holding = trio.Event()
    release = trio.Event()

    async def worker(key: str) -> None:
        seen.append(key)
        if len(seen) == 1:
            holding.set()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: queue.run_workers(worker, count=4, task_status=task_status)
        )
        queue.add("a")
        await holding.wait()
        queue.add("a")  # while held: must not run concurrently
        await trio.sleep(1)
        assert seen == ["a"]
        release.set()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert seen == ["a", "a"]


async def test_delayed_keys_come_due_on_time_and_a_plain_add_wins(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = WorkQueue()
    start = trio.current_time()
    queue.add_after("slow", 10)
    queue.add_after("fast", 3)
    assert await queue.get() == "fast"
    assert trio.current_time() - start == 3
    queue.add_after("x", 100)
    queue.add("x")
    assert await queue.get() == "x"
    assert trio.current_time() - start == 3
    assert await queue.get() == "slow"
    assert trio.current_time() - start == 10


async def test_an_earlier_retry_replaces_a_later_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = WorkQueue()
    start = trio.current_time()
    queue.add_after("k", 50)
    queue.add_after("k", 5)
    queue.add_after("k", 80)  # later than the one pending: ignored
    assert await queue.get() == "k"
    assert trio.current_time() - start == 5
    queue.done("k")
    with trio.move_on_after(200):
        await queue.get()
        raise AssertionError("the superseded entry must not fire")


async def test_a_failing_worker_does_not_lose_the_key_or_stop_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = WorkQueue()
    attempts: list[str] = []

    async def worker(key: str) -> None:
        attempts.append(key)
        queue.add_after(key, 1)  # the reconciler schedules its own retry

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: queue.run_workers(worker, count=1, task_status=task_status)
        )
        queue.add("p")
        await trio.sleep(5.5)
        nursery.cancel_scope.cancel()
    assert len(attempts) == 6


async def test_drain_waits_for_work_in_flight_and_hands_out_nothing_new(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = WorkQueue()
    finished: list[str] = []

    async def worker(key: str) -> None:
        await trio.sleep(5)
        finished.append(key)

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: queue.run_workers(worker, count=1, task_status=task_status)
        )
        queue.add("a")
        queue.add("b")
        await trio.sleep(1)
        start = trio.current_time()
        await queue.drain()
        assert trio.current_time() - start == 4
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert finished == ["a"]


async def test_a_slow_key_does_not_hold_back_keys_added_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Issue 10: 256 workers, one key that takes 10 s, two fast keys added 0.1 s later: the fast
    keys start at 0.1 s (the old queue started them at 10.1 s, when the slow key was done)."""
    queue = WorkQueue()
    started: dict[str, float] = {}
    start = trio.current_time()

    async def worker(key: str) -> None:
        started[key] = trio.current_time() - start
        await trio.sleep(10 if key == "slow" else 0.05)

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: queue.run_workers(worker, count=256, task_status=task_status)
        )
        queue.add("slow")
        await trio.sleep(0.1)
        queue.add("fast-1")
        queue.add("fast-2")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert started == {"slow": 0, "fast-1": pytest.approx(0.1), "fast-2": pytest.approx(0.1)}


async def test_a_delayed_key_comes_due_while_every_other_worker_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The worker that keeps the clock can be the one taken for a ready key; another idle
    worker must take over the clock, so the delayed key still runs when it is due."""
    queue = WorkQueue()
    started: dict[str, float] = {}
    start = trio.current_time()

    async def worker(key: str) -> None:
        started[key] = trio.current_time() - start
        await trio.sleep(100 if key.startswith("long") else 0)

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: queue.run_workers(worker, count=3, task_status=task_status)
        )
        queue.add_after("later", 5)
        await trio.sleep(1)
        queue.add("long-1")  # may wake the clock's keeper
        await trio.sleep(1)
        queue.add("long-2")
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert started == {"long-1": 1, "long-2": 2, "later": 5}
