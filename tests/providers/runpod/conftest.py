"""Fixtures: the RunPod provider talking real HTTP (loopback) to the simulated RunPod."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.sim.runpod.support import API_KEY, OpenApi, load_document
from vk_trio.pacing import Backoff
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.sim.runpod import RunPodSim, Timings

NODE = "rp-node"
FAST = Backoff(initial=1.0, maximum=30.0, jitter=0.0)


@pytest.fixture
def openapi() -> OpenApi:
    return OpenApi(load_document())


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[RunPodSim]:
    simulator = RunPodSim(
        api_key=API_KEY, timings=Timings(provisioning=2, starting=3, ports_delay=2)
    )
    await nursery.start(simulator.serve)
    yield simulator


def make_provider(sim: RunPodSim, node: str = NODE, **kwargs: object) -> RunPodProvider:
    kwargs.setdefault("registry_mirror", sim.registry_url)
    return RunPodProvider(node, api_key=API_KEY, base_url=sim.url, backoff=FAST, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def provider(sim: RunPodSim) -> AsyncIterator[RunPodProvider]:
    rp = make_provider(sim)
    yield rp
    await rp.aclose()
