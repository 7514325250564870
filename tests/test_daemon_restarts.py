"""kill -9 the agent at the worst moments, start it again: it converges, and money is safe.

The agent runs as a real process here (``python -m vk_trio run``) with the fake cloud in a state
file; after each kill and restart the test reads the fake cloud's ledger to prove there is no
duplicate instance (we rented once per pod) and no orphan (nothing left billing after its pod).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from tests.agent_harness import (
    AgentProcess,
    admin_client,
    agent_config,
    delete_node,
    eventually,
    fake_cloud,
    gpu_pod,
)
from tests.controlplane.launcher import ControlPlane
from vk_trio.errors import NotFound
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.providers.fake import FakeProvider

pytestmark = pytest.mark.controlplane


@dataclass
class Scene:
    """One agent process, its fake cloud, an admin client and the test's namespace."""

    agent: AgentProcess
    cloud: FakeProvider
    client: KubeClient
    namespace: str

    async def phase(self, name: str) -> str:
        try:
            pod: Pod = await self.client.get(PODS, name, namespace=self.namespace)
        except NotFound:
            return "Gone"
        return pod.status.phase

    async def wait_phase(self, name: str, phase: str, within: float = 60) -> None:
        async def probe() -> bool:
            return await self.phase(name) == phase

        await eventually(probe, within=within, what=f"{name} {phase}")

    async def start_with_pod(self, name: str, *, boot_seconds: str = "0.5") -> None:
        """Start the agent and submit a GPU pod bound to its node."""
        await self.agent.start()
        annotations = {
            "fake.vk-trio.io/boot-seconds": boot_seconds,
            "fake.vk-trio.io/start-seconds": "0.5",
        }
        pod = gpu_pod(name, self.agent.config.node_name, annotations=annotations)
        await self.client.create(PODS, pod, namespace=self.namespace)

    async def no_live_instance(self) -> bool:
        await trio.lowlevel.checkpoint()
        return not self.cloud.live_instances()


@pytest.fixture
async def scene(controlplane: ControlPlane, namespace: str, tmp_path: Path) -> AsyncIterator[Scene]:
    config = agent_config(controlplane, tmp_path)
    agent = AgentProcess(config, tmp_path / "agent.log")
    async with admin_client(controlplane) as client:
        try:
            yield Scene(agent=agent, cloud=fake_cloud(config), client=client, namespace=namespace)
        finally:
            if agent.process is not None:
                await agent.stop()
            await delete_node(client, config.node_name)


async def test_kill9_during_provisioning_then_restart_rents_exactly_one_instance(
    scene: Scene,
) -> None:
    await scene.start_with_pod("slow-boot", boot_seconds="6")

    async def rented() -> bool:
        await trio.lowlevel.checkpoint()
        return len(scene.cloud.ledger()) == 1

    await eventually(rented, what="instance rented")
    await scene.agent.kill9()
    await scene.agent.start()
    await scene.wait_phase("slow-boot", "Running")
    assert len(scene.cloud.ledger()) == 1, "the restart must adopt, not rent again"


async def test_kill9_while_running_then_restart_adopts_the_running_instance(scene: Scene) -> None:
    await scene.start_with_pod("steady")
    await scene.wait_phase("steady", "Running")
    await scene.agent.kill9()
    await scene.agent.start()
    await trio.sleep(3)  # several fast intervals of the new process
    assert await scene.phase("steady") == "Running"
    assert len(scene.cloud.ledger()) == 1 and len(scene.cloud.live_instances()) == 1
    await scene.client.delete(PODS, "steady", namespace=scene.namespace)
    await scene.wait_phase("steady", "Gone", within=30)
    assert not scene.cloud.live_instances()


async def test_a_pod_deleted_while_the_agent_is_down_is_finished_at_the_next_start(
    scene: Scene,
) -> None:
    await scene.start_with_pod("deleted-meanwhile")
    await scene.wait_phase("deleted-meanwhile", "Running")
    await scene.agent.kill9()
    await scene.client.delete(PODS, "deleted-meanwhile", namespace=scene.namespace)
    # no kubelet: the pod stays Terminating with its instance billing
    assert await scene.phase("deleted-meanwhile") == "Running"
    assert len(scene.cloud.live_instances()) == 1
    await scene.agent.start()
    await scene.wait_phase("deleted-meanwhile", "Gone", within=30)
    assert not scene.cloud.live_instances()


async def test_a_pod_force_deleted_while_the_agent_is_down_loses_its_instance_at_the_next_start(
    scene: Scene, controlplane: ControlPlane
) -> None:
    await scene.start_with_pod("forced")
    await scene.wait_phase("forced", "Running")
    await scene.agent.kill9()
    controlplane.kubectl(
        "delete", "pod", "forced", "-n", scene.namespace, "--grace-period=0", "--force"
    )
    assert len(scene.cloud.live_instances()) == 1
    await scene.agent.start()
    await eventually(scene.no_live_instance, within=30, what="orphan instance deleted")
    assert len(scene.cloud.ledger()) == 1


async def test_sigterm_stops_the_agent_without_deleting_instances(scene: Scene) -> None:
    await scene.start_with_pod("survivor")
    await scene.wait_phase("survivor", "Running")
    code = await scene.agent.stop()
    assert code == 0
    assert len(scene.cloud.live_instances()) == 1, "shutdown must never delete an instance"
    await scene.agent.start()
    await scene.client.delete(PODS, "survivor", namespace=scene.namespace)
    await scene.wait_phase("survivor", "Gone", within=30)
    assert not scene.cloud.live_instances()


async def test_an_instance_lost_while_the_agent_was_down_fails_the_pod_instead_of_rerunning_it(
    scene: Scene,
) -> None:
    await scene.start_with_pod("lost-meanwhile")
    await scene.wait_phase("lost-meanwhile", "Running")
    await scene.agent.kill9()
    (instance,) = scene.cloud.live_instances()
    await scene.cloud.delete(instance.instance_id)  # the machine dies while nobody watches
    await scene.agent.start()
    await scene.wait_phase("lost-meanwhile", "Failed", within=30)
    current: Pod = await scene.client.get(PODS, "lost-meanwhile", namespace=scene.namespace)
    terminated = current.status.container_statuses[0].state.terminated
    assert terminated is not None and terminated.exit_code == 137
    assert len(scene.cloud.ledger()) == 1, "a Job's pod must never silently run twice"
