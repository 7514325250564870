"""Both simulated clouds at once, and the node agent fronting both, for control-plane tests.

The simulated RunPod and the simulated Vast.ai run in the test's trio loop on loopback, each
with its own key; the agent gets ``--provider runpod,vastai`` and both URLs, so the registry
builds the same Router a user's node would (Vast.ai's pacing shrunk as the simulator's limits
are). Their ledgers say what was rented and what still bills.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from tests.agent_harness import agent_config, running_agent
from tests.controlplane.launcher import ControlPlane
from tests.providers.vastai.controlplane_support import QUICK, SCALE, pod_manifest
from tests.sim.runpod.support import API_KEY as RUNPOD_KEY
from tests.sim.vastai.support import API_KEY as VAST_KEY
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.pacing import Backoff
from vk_trio.providers import registry
from vk_trio.providers.base import Provider
from vk_trio.providers.instrumented import InstrumentedProvider
from vk_trio.providers.router import Router
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.pacing import DEFAULT_INTERVALS
from vk_trio.sim.runpod import RunPodSim, Timings
from vk_trio.sim.runpod import seed_workloads as runpod_seeds
from vk_trio.sim.vastai import RateLimits, VastSim, trio_clock
from vk_trio.sim.vastai import seed_workloads as vast_seeds

SERVICE_IMAGE = "example/service:1"  # runs until stopped, on both clouds
QUICK_RETRY = Backoff(initial=0.1, maximum=0.5, jitter=0.0)
BUDGET = 240.0  # seconds any one test may take
ENV = {"RUNPOD_API_KEY": RUNPOD_KEY, "VAST_API_KEY": VAST_KEY}
TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Equal",
    "value": "runpod",  # seed 000's toleration: the node's taint keeps the first cloud's name
    "effect": "NoSchedule",
}


@dataclass
class Clouds:
    runpod: RunPodSim
    vast: VastSim

    def spend(self) -> float:
        """$/h both ledgers are billing right now."""
        vast = sum(i.offer.dph_total(i.disk) for i in self.vast.instances())
        return self.runpod.ledger.rate() + vast

    def rented(self) -> tuple[int, int]:
        """Instances ever rented on (RunPod, Vast.ai)."""
        return len(self.runpod.pods(include_terminated=True)), len(self.vast.ledger.charges())

    def billing(self) -> bool:
        return bool(self.runpod.billing() or self.vast.ledger.accruing())

    def check(self) -> None:
        """Every request and answer of the Vast.ai simulator was one its document allows."""
        assert self.vast.violations == [] and self.vast.rejected == []


@asynccontextmanager
async def both_clouds(nursery: trio.Nursery) -> AsyncIterator[Clouds]:
    runpod = RunPodSim(api_key=RUNPOD_KEY, timings=Timings(provisioning=1, starting=1))
    for image, workload in runpod_seeds().items():
        runpod.script_workload(image, workload)
    vast = VastSim(
        api_keys=[VAST_KEY],
        clock=trio_clock(time.time() - trio.current_time()),
        rate_limits=RateLimits().scaled(SCALE),
    )
    for image, vast_workload in vast_seeds().items():
        vast.script(image, vast_workload)
    vast.script(SERVICE_IMAGE, QUICK)
    await nursery.start(runpod.serve)
    await nursery.start(vast.serve)
    clouds = Clouds(runpod=runpod, vast=vast)
    yield clouds
    clouds.check()


def two_cloud_config(cp: ControlPlane, tmp_path: Path, clouds: Clouds, **overrides: Any) -> Config:
    overrides.setdefault("registry_mirror", clouds.runpod.registry_url)
    return agent_config(
        cp,
        tmp_path,
        provider="runpod,vastai",
        runpod_api_url=clouds.runpod.url,
        vast_api_url=clouds.vast.url,
        **overrides,
    )


def cloud_of(router: Router, name: str) -> Provider:
    """The provider of one cloud of ``router`` (under the agent's call counting)."""
    cloud = router.clouds[name]
    while isinstance(cloud, InstrumentedProvider):
        cloud = cloud.inner
    return cloud


async def build_router(config: Config, nursery: trio.Nursery) -> Router:
    """The Router the registry builds for both keys and both URLs, Vast.ai paced as its
    simulator is limited and RunPod's retries shortened (a failing call gives up in about two
    seconds instead of fifteen), so outages play out within a test's time."""
    router = await registry.build(config, nursery, ENV)
    assert isinstance(router, Router)
    vast = cloud_of(router, "vastai")
    assert isinstance(vast, VastProvider)
    vast.client.pacer.intervals = {name: s * SCALE for name, s in DEFAULT_INTERVALS.items()}
    vast.follow_poll_seconds = 0.5
    vast.markers.job_poll = vast.markers.always_poll = 0.5
    runpod = cloud_of(router, "runpod")
    assert isinstance(runpod, RunPodProvider)
    runpod.backoff = runpod.client.backoff = QUICK_RETRY
    return router


@asynccontextmanager
async def two_cloud_agent(
    config: Config, cp: ControlPlane, *, keep_node: bool = False
) -> AsyncIterator[Agent]:
    async def make_provider(nursery: trio.Nursery) -> Provider:
        return await build_router(config, nursery)

    async with running_agent(
        config, cp, make_provider=make_provider, within=BUDGET, keep_node=keep_node
    ) as agent:
        yield agent


def gpu_pod(
    name: str,
    node: str,
    *,
    annotations: dict[str, str] | None = None,
    image: str = SERVICE_IMAGE,
    command: list[str] | None = None,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    """Seed 000/001's pod shape: one GPU, scheduled by a nodeSelector onto the node with the
    ``provider=runpod`` toleration (the first cloud's name), whatever cloud it lands on."""
    pod = pod_manifest(name, node, image=image, command=command, restart_policy=restart_policy)
    pod["metadata"]["annotations"] = annotations or {}
    del pod["spec"]["nodeName"]
    pod["spec"]["nodeSelector"] = {"type": "virtual-kubelet", "kubernetes.io/hostname": node}
    pod["spec"]["tolerations"] = [TOLERATION]
    return pod
