"""kill -9 the agent at the worst moments, start it again: it converges, and money is safe.

The agent runs as a real process here (``python -m vk_trio run``) with the fake cloud in a state
file; after each kill and restart the test reads the fake cloud's ledger to prove there is no
duplicate instance (we rented once per pod) and no orphan (nothing left billing after its pod).
"""

from __future__ import annotations

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

pytestmark = pytest.mark.controlplane


async def phase_of(client: KubeClient, ns: str, name: str) -> str:
    try:
        pod: Pod = await client.get(PODS, name, namespace=ns)
    except NotFound:
        return "Gone"
    return pod.status.phase


async def wait_phase(
    client: KubeClient, ns: str, name: str, phase: str, within: float = 60
) -> None:
    async def probe() -> bool:
        return await phase_of(client, ns, name) == phase

    await eventually(probe, within=within, what=f"{name} {phase}")


@pytest.fixture
def agent_process(controlplane: ControlPlane, tmp_path: Path) -> AgentProcess:
    return AgentProcess(agent_config(controlplane, tmp_path), tmp_path / "agent.log")


async def test_kill9_during_provisioning_then_restart_rents_exactly_one_instance(
    controlplane: ControlPlane, namespace: str, agent_process: AgentProcess
) -> None:
    config = agent_process.config
    cloud = fake_cloud(config)
    pod = gpu_pod(
        "slow-boot",
        config.node_name,
        annotations={"fake.vk-trio.io/boot-seconds": "6", "fake.vk-trio.io/start-seconds": "0.5"},
    )
    async with admin_client(controlplane) as client:
        try:
            await agent_process.start()
            await client.create(PODS, pod, namespace=namespace)

            async def rented() -> bool:
                await trio.lowlevel.checkpoint()
                return len(cloud.ledger()) == 1

            await eventually(rented, what="instance rented")
            await agent_process.kill9()
            await agent_process.start()
            await wait_phase(client, namespace, "slow-boot", "Running")
            assert len(cloud.ledger()) == 1, "the restart must adopt, not rent again"
        finally:
            await agent_process.stop()
            await delete_node(client, config.node_name)


async def test_kill9_while_running_then_restart_adopts_the_running_instance(
    controlplane: ControlPlane, namespace: str, agent_process: AgentProcess
) -> None:
    config = agent_process.config
    cloud = fake_cloud(config)
    pod = gpu_pod(
        "steady",
        config.node_name,
        annotations={"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"},
    )
    async with admin_client(controlplane) as client:
        try:
            await agent_process.start()
            await client.create(PODS, pod, namespace=namespace)
            await wait_phase(client, namespace, "steady", "Running")
            await agent_process.kill9()
            await agent_process.start()
            await trio.sleep(3)  # several fast intervals of the new process
            assert await phase_of(client, namespace, "steady") == "Running"
            assert len(cloud.ledger()) == 1 and len(cloud.live_instances()) == 1
            await client.delete(PODS, "steady", namespace=namespace)
            await wait_phase(client, namespace, "steady", "Gone", within=30)
            assert not cloud.live_instances()
        finally:
            await agent_process.stop()
            await delete_node(client, config.node_name)


async def test_a_pod_deleted_while_the_agent_is_down_is_finished_at_the_next_start(
    controlplane: ControlPlane, namespace: str, agent_process: AgentProcess
) -> None:
    config = agent_process.config
    cloud = fake_cloud(config)
    pod = gpu_pod(
        "deleted-meanwhile",
        config.node_name,
        annotations={"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"},
    )
    async with admin_client(controlplane) as client:
        try:
            await agent_process.start()
            await client.create(PODS, pod, namespace=namespace)
            await wait_phase(client, namespace, "deleted-meanwhile", "Running")
            await agent_process.kill9()
            await client.delete(PODS, "deleted-meanwhile", namespace=namespace)
            # no kubelet: the pod stays Terminating with its instance billing
            assert await phase_of(client, namespace, "deleted-meanwhile") == "Running"
            assert len(cloud.live_instances()) == 1
            await agent_process.start()
            await wait_phase(client, namespace, "deleted-meanwhile", "Gone", within=30)
            assert not cloud.live_instances()
        finally:
            await agent_process.stop()
            await delete_node(client, config.node_name)


async def test_a_pod_force_deleted_while_the_agent_is_down_loses_its_instance_at_the_next_start(
    controlplane: ControlPlane, namespace: str, agent_process: AgentProcess
) -> None:
    config = agent_process.config
    cloud = fake_cloud(config)
    pod = gpu_pod(
        "forced",
        config.node_name,
        annotations={"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"},
    )
    async with admin_client(controlplane) as client:
        try:
            await agent_process.start()
            await client.create(PODS, pod, namespace=namespace)
            await wait_phase(client, namespace, "forced", "Running")
            await agent_process.kill9()
            controlplane.kubectl(
                "delete", "pod", "forced", "-n", namespace, "--grace-period=0", "--force"
            )
            assert len(cloud.live_instances()) == 1
            await agent_process.start()

            async def orphan_gone() -> bool:
                await trio.lowlevel.checkpoint()
                return not cloud.live_instances()

            await eventually(orphan_gone, within=30, what="orphan instance deleted")
            assert len(cloud.ledger()) == 1
        finally:
            await agent_process.stop()
            await delete_node(client, config.node_name)


async def test_sigterm_stops_the_agent_without_deleting_instances(
    controlplane: ControlPlane, namespace: str, agent_process: AgentProcess
) -> None:
    config = agent_process.config
    cloud = fake_cloud(config)
    pod = gpu_pod(
        "survivor",
        config.node_name,
        annotations={"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"},
    )
    async with admin_client(controlplane) as client:
        try:
            await agent_process.start()
            await client.create(PODS, pod, namespace=namespace)
            await wait_phase(client, namespace, "survivor", "Running")
            code = await agent_process.stop()
            assert code == 0
            assert len(cloud.live_instances()) == 1, "shutdown must never delete an instance"
            await agent_process.start()
            await client.delete(PODS, "survivor", namespace=namespace)
            await wait_phase(client, namespace, "survivor", "Gone", within=30)
            assert not cloud.live_instances()
        finally:
            await agent_process.stop()
            await delete_node(client, config.node_name)


async def test_an_instance_lost_while_the_agent_was_down_fails_the_pod_instead_of_rerunning_it(
    controlplane: ControlPlane, namespace: str, agent_process: AgentProcess
) -> None:
    config = agent_process.config
    cloud = fake_cloud(config)
    pod = gpu_pod(
        "lost-meanwhile",
        config.node_name,
        annotations={"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"},
    )
    async with admin_client(controlplane) as client:
        try:
            await agent_process.start()
            await client.create(PODS, pod, namespace=namespace)
            await wait_phase(client, namespace, "lost-meanwhile", "Running")
            await agent_process.kill9()
            (instance,) = cloud.live_instances()
            await cloud.delete(instance.instance_id)  # the machine dies while nobody watches
            await agent_process.start()
            await wait_phase(client, namespace, "lost-meanwhile", "Failed", within=30)
            current: Pod = await client.get(PODS, "lost-meanwhile", namespace=namespace)
            terminated = current.status.container_statuses[0].state.terminated
            assert terminated is not None and terminated.exit_code == 137
            assert len(cloud.ledger()) == 1, "a Job's pod must never silently run twice"
        finally:
            await agent_process.stop()
            await delete_node(client, config.node_name)
