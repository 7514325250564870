"""Rate limits are minimum intervals per endpoint and caller, answered 429 without Retry-After."""

from __future__ import annotations

import httpx2
import pytest
import trio
import trio.testing

from tests.sim.vastai.support import API_KEY
from vk_trio.latency import Latency
from vk_trio.sim.vastai import RateLimits, VastSim
from vk_trio.sim.vastai.ratelimit import DEFAULT_INTERVALS, Limiter


async def test_calls_sooner_than_the_interval_get_429_in_three_shapes_without_retry_after(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = VastSim(api_keys=[API_KEY])
    await nursery.start(sim.serve)
    auth = {"authorization": f"Bearer {API_KEY}"}
    async with httpx2.AsyncClient(base_url=sim.url, headers=auth, trust_env=False) as http:
        assert (await http.get("/api/v1/instances/")).status_code == 200
        refused = [await http.get("/api/v1/instances/") for _ in range(3)]
        await trio.sleep(1.0)
        assert (await http.get("/api/v1/instances/")).status_code == 200
    assert [r.status_code for r in refused] == [429, 429, 429]
    assert all("retry-after" not in r.headers for r in refused)
    assert refused[0].json() == {"detail": "API requests too frequent endpoint threshold=1"}
    assert refused[1].json()["error"] == "rate_limit_exceeded"
    assert refused[2].headers["content-type"].startswith("text/plain")
    assert refused[2].text.startswith("API requests too frequent")
    assert sim.violations == []


def test_each_endpoint_and_caller_has_its_own_interval() -> None:
    limiter = Limiter(RateLimits())
    assert limiter.admit("a", "createInstance", 0.0) is None
    assert limiter.admit("a", "createInstance", 4.0) == DEFAULT_INTERVALS["createInstance"]
    assert limiter.admit("b", "createInstance", 4.0) is None
    assert limiter.admit("a", "showInstance", 4.0) is None
    assert limiter.admit("a", "createInstance", 4.5) is None  # the refusal did not count
    assert limiter.refused == {"createInstance": 1}


def test_the_search_allows_ten_calls_a_minute() -> None:
    limiter = Limiter(RateLimits())
    assert all(limiter.admit("ip", "searchOffers", float(i)) is None for i in range(10))
    assert limiter.admit("ip", "searchOffers", 30.0) is not None
    assert limiter.admit("ip", "searchOffers", 60.0) is None


@pytest.mark.parametrize("factor", [0.01, 0.5])
def test_intervals_shrink_for_tests(factor: float) -> None:
    limiter = Limiter(RateLimits().scaled(factor))
    assert limiter.admit("a", "destroyInstance", 0.0) is None
    assert limiter.admit("a", "destroyInstance", 3.0 * factor * 0.9) is not None
    assert limiter.admit("a", "destroyInstance", 3.0 * factor * 1.01) is None


def test_limits_can_be_switched_off() -> None:
    limiter = Limiter(RateLimits(enabled=False))
    assert all(limiter.admit("a", "createInstance", 0.0) is None for _ in range(5))


async def test_an_admitted_call_answers_after_its_response_time_a_refused_one_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = VastSim(api_keys=[API_KEY], latency=Latency({"showInstances": 0.4}))
    await nursery.start(sim.serve)
    auth = {"authorization": f"Bearer {API_KEY}"}
    async with httpx2.AsyncClient(base_url=sim.url, headers=auth, trust_env=False) as http:
        start = trio.current_time()
        assert (await http.get("/api/v1/instances/")).status_code == 200
        admitted = trio.current_time() - start
        start = trio.current_time()
        assert (await http.get("/api/v1/instances/")).status_code == 429
        refused = trio.current_time() - start
    assert admitted == pytest.approx(0.4)
    assert refused < 0.01
    assert [round(e.answered_at - e.received_at, 3) for e in sim.journal] == [0.4, 0.0]
