"""Fixtures: a simulated Vast.ai on loopback, an HTTP client for it, and the OpenAPI judge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
import trio

from tests.sim.vastai.support import API_KEY, OpenApi
from vk_trio.sim.vastai import RateLimits, VastSim


@pytest.fixture(scope="session")
def openapi() -> OpenApi:
    return OpenApi()


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[VastSim]:
    simulator = VastSim(api_keys=[API_KEY], rate_limits=RateLimits(enabled=False))
    await nursery.start(simulator.serve)
    yield simulator
    assert simulator.violations == []


@pytest.fixture
async def http(sim: VastSim) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        base_url=sim.url, headers={"authorization": f"Bearer {API_KEY}"}, trust_env=False
    ) as client:
        yield client
