"""The node agent on the real control plane, with the fake provider: node, pods, Jobs, deletion.

Each test runs its own agent (own node name, own fake cloud file) inside the test's trio loop
and talks to the API server as a user would (our client, and kubectl where a user types it).
The fake cloud's ledger, read through a second view of the same state file, proves what was
rented and what was paid.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.agent_harness import (
    admin_client,
    agent_config,
    eventually,
    fake_cloud,
    gpu_pod,
    pod_gone,
    running_agent,
)
from tests.controlplane.launcher import ControlPlane
from vk_trio.errors import NotFound
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, Job, Node, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, JOBS, LEASES, NODES, PODS, SECRETS

pytestmark = pytest.mark.controlplane

FAST = {"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"}


def job_manifest(
    name: str, node: str, *, exit_code: int, backoff_limit: int = 0
) -> dict[str, object]:
    template = gpu_pod(
        name,
        node,
        annotations={
            **FAST,
            "fake.vk-trio.io/run-seconds": "1",
            "fake.vk-trio.io/exit-code": str(exit_code),
        },
    )
    spec = template["spec"]
    assert isinstance(spec, dict)
    del spec["nodeName"]
    spec["nodeSelector"] = {"type": "virtual-kubelet", "kubernetes.io/hostname": node}
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"annotations": template["metadata"]["annotations"]},
                "spec": spec,
            },
        },
    }


async def events_for(client: KubeClient, ns: str, name: str) -> list[Event]:
    listed: ObjectList[Event] = await client.list(
        EVENTS, namespace=ns, field_selector=f"involvedObject.name={name}"
    )
    return listed.items


async def test_the_node_registers_ready_with_its_labels_taint_capacity_and_lease(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    async with admin_client(controlplane) as client, running_agent(config, controlplane) as agent:
        node: Node = await client.get(NODES, config.node_name)
        labels = node.metadata.labels
        assert labels["type"] == "virtual-kubelet"
        assert labels["kubernetes.io/role"] == "agent"
        assert labels["kubernetes.io/hostname"] == config.node_name
        # the fake says it is not a cloud
        assert (labels["vk-trio.io/providers"], labels["vk-trio.io/simulated"]) == ("fake", "fake")
        assert node.spec.taints[0].key == "virtual-kubelet.io/provider"
        assert node.spec.taints[0].value == "fake"
        assert node.spec.provider_id.startswith("vk-trio://")
        assert node.status.capacity["nvidia.com/gpu"] == str(config.gpus)

        async def ready() -> bool:
            current: Node = await client.get(NODES, config.node_name)
            return any(c.type == "Ready" and c.status == "True" for c in current.status.conditions)

        await eventually(ready, what="node Ready")
        lease = await client.get(LEASES, config.node_name, namespace="kube-node-lease")
        assert lease.metadata.owner_references[0].uid == node.metadata.uid
        assert lease.spec.lease_duration_seconds == 40
        shown = controlplane.kubectl("get", "node", config.node_name, "-o", "json")
        assert json.loads(shown.stdout)["metadata"]["name"] == config.node_name
        assert agent.health_port
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{agent.health_port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            readyz = await http.get("/readyz", params={"verbose": "1"})
            assert readyz.status_code == 200, readyz.text
            assert "[+]lease ok" in readyz.text and "[+]pod-cache ok" in readyz.text
            scraped = (await http.get("/metrics")).text
        families = {f.name: f for f in text_string_to_metric_families(scraped)}
        assert families["vk_trio_lease_renewals"].samples[0].value >= 1
        assert any(
            s.labels["method"] == "list" for s in families["vk_trio_cloud_api_calls"].samples
        )
        assert "vk_trio_provisioning_seconds" in families


async def test_a_pod_runs_and_ends_with_its_real_exit_code_and_nothing_left_billed(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    pod = gpu_pod(
        "exits-3",
        config.node_name,
        annotations={**FAST, "fake.vk-trio.io/run-seconds": "1", "fake.vk-trio.io/exit-code": "3"},
    )
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(PODS, pod, namespace=namespace)

        async def finished() -> Pod | None:
            current: Pod = await client.get(PODS, "exits-3", namespace=namespace)
            return current if current.status.phase in ("Succeeded", "Failed") else None

        done = await eventually(finished, what="pod to finish")
        assert done.status.phase == "Failed"
        terminated = done.status.container_statuses[0].state.terminated
        assert terminated is not None and terminated.exit_code == 3
        assert terminated.reason == "Error"
        cloud = fake_cloud(config)
        await eventually(lambda: _no_live(cloud), what="instance deleted")
        assert len(cloud.ledger()) == 1


async def _no_live(cloud: object) -> bool:
    await trio.lowlevel.checkpoint()
    return not cloud.live_instances()  # type: ignore[attr-defined]


async def test_a_job_scheduled_onto_the_node_completes(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(
            JOBS, job_manifest("gpu-workload", config.node_name, exit_code=0), namespace=namespace
        )

        async def complete() -> bool:
            job: Job = await client.get(JOBS, "gpu-workload", namespace=namespace)
            return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)

        await eventually(complete, within=60, what="Job Complete")
        pods: ObjectList[Pod] = await client.list(
            PODS, namespace=namespace, label_selector="job-name=gpu-workload"
        )
        assert [p.spec.node_name for p in pods.items] == [config.node_name]


async def test_a_job_whose_pods_exit_1_fails_after_backoff_limit_plus_one_pods(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(
            JOBS,
            job_manifest("flaky", config.node_name, exit_code=1, backoff_limit=2),
            namespace=namespace,
        )

        async def failed() -> bool:
            job: Job = await client.get(JOBS, "flaky", namespace=namespace)
            return any(c.type == "Failed" and c.status == "True" for c in job.status.conditions)

        await eventually(failed, within=120, what="Job Failed")
        pods: ObjectList[Pod] = await client.list(
            PODS, namespace=namespace, label_selector="job-name=flaky"
        )
        assert len(pods.items) == 3
        assert all(p.status.phase == "Failed" for p in pods.items)
        await eventually(lambda: _no_live(fake_cloud(config)), what="no live instance")


async def test_deleting_a_running_pod_removes_its_instance_and_the_pod(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(
            PODS, gpu_pod("runner", config.node_name, annotations=FAST), namespace=namespace
        )

        async def running() -> bool:
            current: Pod = await client.get(PODS, "runner", namespace=namespace)
            return current.status.phase == "Running"

        await eventually(running, what="pod Running")
        start = trio.current_time()
        await client.delete(PODS, "runner", namespace=namespace)

        await eventually(lambda: pod_gone(client, namespace, "runner"), within=15, what="pod gone")
        assert trio.current_time() - start < 10
        assert not fake_cloud(config).live_instances()


async def test_a_missing_secret_waits_with_a_reason_and_an_event_then_runs_when_created(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(
            PODS,
            gpu_pod("needs-secret", config.node_name, env=env, annotations=FAST),
            namespace=namespace,
        )

        async def waiting() -> bool:
            pod: Pod = await client.get(PODS, "needs-secret", namespace=namespace)
            statuses = pod.status.container_statuses
            state = statuses[0].state.waiting if statuses else None
            return state is not None and state.reason == "CreateContainerConfigError"

        await eventually(waiting, what="CreateContainerConfigError")
        events = await events_for(client, namespace, "needs-secret")
        assert any("hf" in e.message and e.type == "Warning" for e in events)
        assert not fake_cloud(config).live_instances()
        await client.create(
            SECRETS,
            {"metadata": {"name": "hf"}, "stringData": {"token": "canary-7f3a9"}},
            namespace=namespace,
        )

        async def running() -> bool:
            pod: Pod = await client.get(PODS, "needs-secret", namespace=namespace)
            return pod.status.phase == "Running"

        await eventually(running, within=60, what="pod Running once the Secret exists")


async def test_a_deleted_node_is_registered_again_and_its_lease_follows(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        first: Node = await client.get(NODES, config.node_name)
        await client.delete(NODES, config.node_name)

        async def recreated() -> Node | None:
            try:
                node: Node = await client.get(NODES, config.node_name)
            except NotFound:
                return None
            return node if node.metadata.uid != first.metadata.uid else None

        node = await eventually(recreated, what="node recreated")

        async def lease_owned_by_new_node() -> bool:
            try:
                lease = await client.get(LEASES, config.node_name, namespace="kube-node-lease")
            except NotFound:  # the garbage collector removed the old node's lease
                return False
            refs = lease.metadata.owner_references
            return bool(refs) and refs[0].uid == node.metadata.uid

        await eventually(lease_owned_by_new_node, within=10, what="lease re-owned")
