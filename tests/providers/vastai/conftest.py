"""Fixtures: the simulated Vast.ai on loopback and Vast.ai providers talking HTTP to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from tests.sim.vastai.support import API_KEY, OpenApi
from vk_trio.providers.base import InstanceSpec, Port, Requirements
from vk_trio.providers.vastai import VastProvider
from vk_trio.sim.vastai import VastSim

NODE = "vk-vast"
MakeProvider = Callable[..., VastProvider]


@pytest.fixture(scope="session")
def openapi() -> OpenApi:
    return OpenApi()


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[VastSim]:
    """Vast.ai with its documented rate limits: our pacing must keep us under them."""
    simulator = VastSim(api_keys=[API_KEY])
    await nursery.start(simulator.serve)
    yield simulator
    assert simulator.violations == []
    assert simulator.rejected == []
    assert simulator.ignored_filters == []


@pytest.fixture
async def make_provider(sim: VastSim) -> AsyncIterator[MakeProvider]:
    made: list[VastProvider] = []

    def make(node_name: str = NODE, **kw: Any) -> VastProvider:
        kw.setdefault("registry_mirror", sim.registry_url)
        provider = VastProvider(
            node_name,
            api_key=API_KEY,
            base_url=sim.url,
            clock=sim.clock,
            trust_env=False,
            **kw,
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def spec(
    *,
    node_name: str = NODE,
    pod_uid: str = "3f0c6a9e-2c1d-4b7e-9a51-0d2f6c8e1a10",
    attempt: int = 0,
    image: str = "example/app:1",
    command: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
    restart_policy: str = "Always",
    ports: tuple[int, ...] = (),
    annotations: dict[str, str] | None = None,
    **need: Any,
) -> InstanceSpec:
    return InstanceSpec(
        node_name=node_name,
        namespace="default",
        pod_name=f"pod-{pod_uid[:8]}",
        pod_uid=pod_uid,
        attempt=attempt,
        image=image,
        command=command,
        args=args,
        restart_policy=restart_policy,
        ports=tuple(Port(number=p) for p in ports),
        need=Requirements(annotations=annotations or {}, **need),
    )
