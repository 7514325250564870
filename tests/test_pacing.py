"""Backoff and the token bucket, on virtual time."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from vk_trio.pacing import Backoff, TokenBucket


@given(attempt=st.integers(min_value=0, max_value=200))
def test_backoff_never_exceeds_its_maximum(attempt: int) -> None:
    backoff = Backoff(initial=0.5, factor=2, maximum=10, jitter=0.2)
    assert 0 <= backoff.delay(attempt) <= 10


def test_backoff_grows_exponentially_without_jitter() -> None:
    backoff = Backoff(initial=1, factor=2, maximum=100, jitter=0)
    assert [backoff.delay(i) for i in range(5)] == [1, 2, 4, 8, 16]


def test_backoff_honours_retry_after_but_caps_it() -> None:
    backoff = Backoff(initial=1, maximum=5, jitter=0, retry_after_cap=60)
    assert backoff.delay(0, retry_after=42) == 42
    assert backoff.delay(0, retry_after=10_000) == 60


async def test_token_bucket_allows_the_burst_then_holds_the_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = TokenBucket(qps=10, burst=5)
    start = trio.current_time()
    for _ in range(5):
        await bucket.acquire()
    assert trio.current_time() - start == pytest.approx(0)
    for _ in range(20):
        await bucket.acquire()
    # 20 tokens beyond the burst at 10 per second take two seconds
    assert trio.current_time() - start == pytest.approx(2.0, abs=0.01)


async def test_token_bucket_serves_concurrent_callers_at_the_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = TokenBucket(qps=50, burst=1)
    times: list[float] = []

    async def caller() -> None:
        for _ in range(10):
            await bucket.acquire()
            times.append(trio.current_time())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(caller)
    assert len(times) == 50
    # 49 tokens after the first at 50 per second
    assert max(times) - start == pytest.approx(49 / 50, abs=0.01)


def test_token_bucket_rejects_a_zero_burst() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(qps=1, burst=0)
