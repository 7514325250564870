"""The fake's container logs: what was printed by now, shaped the way the kubelet shapes it.

``kubectl logs`` on a pod of the virtual node ends up here (through api/handlers), so each
kubelet option must mean what it means on a real node, and ``--follow`` must end when the
container does instead of hanging the client.
"""

from __future__ import annotations

from contextlib import aclosing
from datetime import timedelta

import pytest
import trio
import trio.testing

from tests.providers.helpers import fake, spec
from vk_trio.providers.base import Instance, LogLine, LogOptions, LogsUnavailable
from vk_trio.providers.fake import DEFAULT_EPOCH, LOGS, RUN_SECONDS, FakeProvider
from vk_trio.providers.fake._workload import to_datetime

# Boot 10 s + start 5 s (the test default), then 40 s of run: line i is printed at 15 + 10*i.
LINES = ("one", "two", "three", "four")
JOB = {LOGS: "\n".join(LINES), RUN_SECONDS: "40"}


async def rent(provider: FakeProvider, annotations: dict[str, str]) -> Instance:
    s = spec(annotations=annotations)
    return await provider.create(s, (await provider.offers(s.need))[0])


async def read(
    provider: FakeProvider, instance: Instance, opts: LogOptions | None = None
) -> list[LogLine]:
    opts = opts or LogOptions()
    async with aclosing(provider.logs(instance.instance_id, opts)) as lines:
        return [line async for line in lines]


def texts(lines: list[LogLine]) -> list[str]:
    return [line.text for line in lines]


async def test_logs_annotation_sets_the_printed_lines(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, {LOGS: "hello\nworld\n", RUN_SECONDS: "1"})
    await trio.sleep(20)
    assert texts(await read(provider, instance)) == ["hello", "world"]


async def test_logs_are_spread_evenly_over_the_run(autojump_clock: trio.testing.MockClock) -> None:
    provider = fake()
    instance = await rent(provider, JOB)
    assert await read(provider, instance) == []  # still provisioning
    await trio.sleep_until(15)
    assert texts(await read(provider, instance)) == ["one"]
    await trio.sleep_until(34.9)
    assert texts(await read(provider, instance)) == ["one", "two"]
    await trio.sleep_until(45)
    assert texts(await read(provider, instance)) == list(LINES)


async def test_logs_are_all_printed_at_start_when_running_forever(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, {LOGS: "\n".join(LINES)})
    await trio.sleep_until(15)
    assert texts(await read(provider, instance)) == list(LINES)


async def test_logs_honour_tail_lines_and_since_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, JOB)
    await trio.sleep_until(100)
    assert texts(await read(provider, instance, LogOptions(tail_lines=2))) == ["three", "four"]
    assert texts(await read(provider, instance, LogOptions(since_seconds=100 - 25))) == [
        "two",
        "three",
        "four",
    ]
    assert texts(await read(provider, instance, LogOptions(tail_lines=0))) == []
    assert texts(await read(provider, instance, LogOptions(since_seconds=100 - 26))) == [
        "three",
        "four",
    ]
    assert texts(
        await read(provider, instance, LogOptions(since_seconds=100 - 25, tail_lines=1))
    ) == ["four"]


async def test_logs_carry_timestamps_only_when_asked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, JOB)
    await trio.sleep_until(60)
    plain = await read(provider, instance)
    stamped = await read(provider, instance, LogOptions(timestamps=True))
    assert {line.timestamp for line in plain} == {None}
    first = to_datetime(DEFAULT_EPOCH + 15)
    assert first is not None
    assert [line.timestamp for line in stamped] == [
        first + timedelta(seconds=10 * i) for i in range(4)
    ]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(4, ["one"]), (6, ["one", "tw"]), (8, ["one", "two"]), (1, ["o"]), (0, [])],
)
async def test_logs_stop_at_limit_bytes_counting_newlines(
    autojump_clock: trio.testing.MockClock, limit: int, expected: list[str]
) -> None:
    provider = fake()
    instance = await rent(provider, JOB)
    await trio.sleep_until(60)
    assert texts(await read(provider, instance, LogOptions(limit_bytes=limit))) == expected


async def test_followed_logs_yield_lines_as_printed_until_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, JOB)
    arrivals = []
    async with aclosing(provider.logs(instance.instance_id, LogOptions(follow=True))) as lines:
        async for line in lines:
            arrivals.append((line.text, trio.current_time()))
    assert arrivals == [("one", 15), ("two", 25), ("three", 35), ("four", 45)]
    assert trio.current_time() == 55  # returned when the container exited


async def test_followed_logs_end_when_the_instance_is_deleted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake(delete_latency=60)
    instance = await rent(provider, JOB)
    received: list[str] = []

    async def follow() -> None:
        opts = LogOptions(follow=True)
        async with aclosing(provider.logs(instance.instance_id, opts)) as lines:
            received.extend([line.text async for line in lines])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.sleep_until(30)
        await provider.delete(instance.instance_id)
    assert received == ["one", "two"]
    assert trio.current_time() <= 31
    assert texts(await read(provider, instance)) == ["one", "two"]  # frozen while terminating


async def test_logs_of_unknown_foreign_or_gone_instances_are_unavailable() -> None:
    provider = fake()
    foreign = provider.seed_foreign_instance()
    instance = await rent(provider, JOB)
    await provider.delete(instance.instance_id)
    for instance_id in ("fake-999999", foreign, instance.instance_id):
        with pytest.raises(LogsUnavailable, match=instance_id):
            async with aclosing(provider.logs(instance_id, LogOptions())) as lines:
                async for _ in lines:
                    pass
