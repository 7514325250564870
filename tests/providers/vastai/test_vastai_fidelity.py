"""What an independent acceptance run found wrong with Vast.ai pods (issue 10), on the real
control plane against the simulated Vast.ai: a rental for a pod already deleted, and a
container that ran fine reported as one that never started, then rented again and again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest
import trio

from tests.agent_harness import admin_client, eventually, get_pod, pod_gone, running_agent
from tests.controlplane.launcher import ControlPlane
from tests.providers.vastai.controlplane_support import (
    BUDGET,
    QUICK,
    SCALE,
    SERVICE_IMAGE,
    pod_manifest,
    vast_config,
)
from tests.sim.vastai.support import API_KEY
from vk_trio.config import Config
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.providers import registry
from vk_trio.providers.base import Provider
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.pacing import DEFAULT_INTERVALS
from vk_trio.sim.vastai import RateLimits, VastSim, trio_clock

pytestmark = pytest.mark.controlplane
CREATE_TURN = 12.0  # seconds between two creates, as the agent paces them in this test


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[VastSim]:
    simulator = VastSim(
        api_keys=[API_KEY],
        clock=trio_clock(time.time() - trio.current_time()),
        rate_limits=RateLimits().scaled(SCALE),
    )
    simulator.script(SERVICE_IMAGE, QUICK)
    await nursery.start(simulator.serve)
    yield simulator
    assert simulator.violations == []


def make_provider_for(config: Config, sim: VastSim, **intervals: float):  # type: ignore[no-untyped-def]
    env = {"VAST_API_KEY": API_KEY}
    mirrored = msgspec.structs.replace(config, registry_mirror=sim.registry_url)

    async def make(nursery: trio.Nursery) -> Provider:
        provider = await registry.build(mirrored, nursery, env)
        assert isinstance(provider, VastProvider)
        scaled = {name: seconds * SCALE for name, seconds in DEFAULT_INTERVALS.items()}
        provider.client.pacer.intervals = {**scaled, **intervals}
        provider.follow_poll_seconds = 0.5
        provider.markers.job_poll = provider.markers.always_poll = 0.5  # read markers often
        return provider

    return make


async def test_a_pod_deleted_while_its_create_waits_for_a_turn_is_never_rented(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    """Defect 1: a pod deleted while its create waited for a rate-limit turn was rented anyway,
    five seconds after its deletion."""
    config = vast_config(controlplane, tmp_path, sim)
    make = make_provider_for(config, sim, create=CREATE_TURN)
    first = pod_manifest("first", config.node_name)
    doomed = pod_manifest("doomed", config.node_name, command=["train"], restart_policy="Never")
    async with (
        admin_client(controlplane) as client,
        running_agent(config, controlplane, make_provider=make, within=BUDGET),
    ):
        await client.create(PODS, first, namespace=namespace)

        async def first_rented() -> bool:
            await trio.lowlevel.checkpoint()
            return any(e.operation == "createInstance" for e in sim.journal)

        await eventually(first_rented, what="the first create")
        created = await client.create(PODS, doomed, namespace=namespace)
        await trio.sleep(3)  # its create now waits for the next turn, about 9 s away
        await client.delete(PODS, "doomed", namespace=namespace)
        await eventually(lambda: pod_gone(client, namespace, "doomed"), what="doomed gone")
        await trio.sleep(CREATE_TURN)  # past the turn it waited for
    creates = [e for e in sim.journal if e.operation == "createInstance"]
    assert len(creates) == 1, "a pod that was deleted must never be rented"
    assert all(created.metadata.uid not in (i.label or "") for i in sim.instances())


async def test_an_always_container_that_ran_and_exited_restarts_in_place_and_says_so(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    """Defect 2: a container that ran and exited 0 under restartPolicy Always was reported as
    ContainerCannotRun with exit code 128, then CrashLoopBackOff, and each restart was a new
    rental (three instances in four minutes)."""
    sim.script("web:1", replace(QUICK, run_seconds=4.0, exit_code=0))
    config = vast_config(controlplane, tmp_path, sim)
    manifest = pod_manifest("web", config.node_name, image="web:1", command=["serve"])
    async with (
        admin_client(controlplane) as client,
        running_agent(
            config, controlplane, make_provider=make_provider_for(config, sim), within=BUDGET
        ),
    ):
        await client.create(PODS, manifest, namespace=namespace)

        async def restarted() -> Pod | None:
            pod = await get_pod(client, namespace, "web")
            statuses = pod.status.container_statuses
            return pod if statuses and statuses[0].restart_count >= 2 else None

        pod = await eventually(restarted, within=90, what="two restarts")
    (status,) = pod.status.container_statuses
    last = status.last_state.terminated
    assert last is not None and (last.exit_code, last.reason) == (0, "Completed")
    assert pod.status.phase == "Running"
    assert len([e for e in sim.journal if e.operation == "createInstance"]) == 1  # one rental
