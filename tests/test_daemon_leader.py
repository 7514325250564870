"""Two replicas with --leader-elect: one acts; kill -9 it mid-lifecycle and the other takes over.

The agents are real processes sharing one fake cloud; the ledger proves there was never a
duplicate instance and the pod was not lost across the takeover.
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
from vk_trio.kube.models import Lease, Pod
from vk_trio.kube.resources import LEASES, PODS

pytestmark = pytest.mark.controlplane


async def test_killing_the_leader_mid_lifecycle_hands_over_without_duplicates_or_loss(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path, namespace=namespace)
    replicas = [AgentProcess(config, tmp_path / f"agent-{i}.log", "--leader-elect") for i in (0, 1)]
    cloud = fake_cloud(config)
    lease_name = f"vk-trio-{config.node_name}"
    async with admin_client(controlplane) as client:
        try:
            for replica in replicas:
                await replica.start()

            async def holder() -> str | None:
                try:
                    lease: Lease = await client.get(LEASES, lease_name, namespace=namespace)
                except Exception:
                    return None
                return lease.spec.holder_identity or None

            first_holder = await eventually(holder, what="a leader")
            pod = gpu_pod(
                "handover",
                config.node_name,
                annotations={
                    "fake.vk-trio.io/boot-seconds": "3",
                    "fake.vk-trio.io/start-seconds": "0.5",
                    "fake.vk-trio.io/run-seconds": "25",
                    "fake.vk-trio.io/exit-code": "0",
                },
            )
            await client.create(PODS, pod, namespace=namespace)

            async def rented() -> bool:
                await trio.lowlevel.checkpoint()
                return len(cloud.ledger()) == 1

            await eventually(rented, what="the instance rented by the leader")
            leader = next(r for r in replicas if r.process and str(r.process.pid) in first_holder)
            await leader.kill9()
            killed_at = trio.current_time()

            async def new_holder() -> str | None:
                current = await holder()
                return current if current and current != first_holder else None

            await eventually(new_holder, within=30, what="the standby taking over")
            assert trio.current_time() - killed_at <= 15 + 2 + 3  # one lease, a retry, slack

            async def succeeded() -> bool:
                current: Pod = await client.get(PODS, "handover", namespace=namespace)
                return current.status.phase == "Succeeded"

            await eventually(succeeded, within=60, what="the pod completing under the new leader")
            assert len(cloud.ledger()) == 1, "the takeover must adopt, never rent twice"
            assert not cloud.live_instances()
        finally:
            for replica in replicas:
                if replica.process is not None:
                    await replica.stop()
            await delete_node(client, config.node_name)
