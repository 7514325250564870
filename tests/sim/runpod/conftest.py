"""Fixtures: a simulated RunPod served on loopback, and the OpenAPI judge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.sim.runpod.support import API_KEY, OpenApi, load_document
from vk_trio.sim.runpod import RunPodSim


@pytest.fixture
def openapi() -> OpenApi:
    return OpenApi(load_document())


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[RunPodSim]:
    simulator = RunPodSim(api_key=API_KEY)
    await nursery.start(simulator.serve)
    yield simulator
