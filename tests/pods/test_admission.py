"""Node capacity enforced like the kubelet's admission: in order, none slips past, and a pod
that does not fit is Failed with the kubelet's reason and message, never rented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from tests.agent_harness import (
    admin_client,
    agent_config,
    eventually,
    fake_cloud,
    gpu_pod,
    running_agent,
)
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.pods.admission import REJECTED_PREFIX, Admission, Capacity, usage_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pod(
    name: str,
    *,
    gpus: str | None = "1",
    cpu: str | None = None,
    age: int = 0,
    phase: str = "",
    running: bool = False,
) -> Pod:
    resources: dict[str, Any] = {"limits": {}, "requests": {}}
    if gpus is not None:
        resources["limits"]["nvidia.com/gpu"] = gpus
    if cpu is not None:
        resources["requests"]["cpu"] = cpu
    manifest: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "creationTimestamp": (T0 + timedelta(seconds=age)).isoformat(),
        },
        "spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]},
        "status": {"phase": phase},
    }
    if running:
        manifest["status"]["containerStatuses"] = [
            {"name": "c", "containerID": "fake://i-1", "state": {"running": {}}}
        ]
    return msgspec.convert(manifest, Pod)


def admission(*, gpus: int = 2, pods: int = 10, cpu: str = "4") -> Admission:
    return Admission(Capacity.of(pods=pods, cpu=cpu, memory="1Ti", gpus=gpus))


def test_pods_beyond_the_gpus_are_rejected_with_the_kubelets_reason_and_message() -> None:
    node = admission(gpus=2)
    node.admit([pod("a"), pod("b"), pod("c")])
    assert node.rejection("uid-a") is None and node.rejection("uid-b") is None
    rejected = node.rejection("uid-c")
    assert rejected is not None
    assert rejected.reason == "OutOfnvidia.com/gpu"
    assert rejected.message == (
        "Node didn't have enough resource: nvidia.com/gpu, requested: 1, used: 2, capacity: 2"
    )


def test_a_batch_is_admitted_oldest_first_whatever_order_it_arrives_in() -> None:
    node = admission(gpus=1)
    node.admit([pod("young", age=10), pod("old", age=1)])
    assert node.rejection("uid-old") is None
    assert node.rejection("uid-young") is not None


def test_pods_that_had_already_started_are_admitted_first_and_never_rejected() -> None:
    node = admission(gpus=1)
    node.admit([pod("new", age=0), pod("was-running", age=5, phase="Running", running=True)])
    assert node.rejection("uid-was-running") is None
    assert node.rejection("uid-new") is not None
    over = admission(gpus=1)  # the operator lowered --gpus: running pods keep running
    over.admit([pod(f"r{i}", phase="Running", running=True) for i in range(3)])
    assert all(over.rejection(f"uid-r{i}") is None for i in range(3))


def test_the_pods_capacity_and_cpu_are_checked_in_the_kubelets_order() -> None:
    node = admission(pods=1, gpus=8, cpu="1")
    node.admit([pod("a", cpu="500m"), pod("b", cpu="2")])
    rejected = node.rejection("uid-b")
    assert rejected is not None and rejected.reason == "OutOfpods"
    assert "requested: 1, used: 1, capacity: 1" in rejected.message
    cpu = admission(pods=10, cpu="1")
    cpu.admit([pod("a", cpu="500m", gpus=None), pod("b", cpu="600m", gpus=None)])
    rejected = cpu.rejection("uid-b")
    assert rejected is not None and rejected.reason == "OutOfcpu"
    assert "requested: 600, used: 500, capacity: 1000" in rejected.message


def test_a_finished_or_deleted_pod_frees_what_it_used() -> None:
    node = admission(gpus=1)
    node.admit([pod("a")])
    node.admit([pod("a", phase="Succeeded")])
    node.admit([pod("b")])
    assert node.rejection("uid-b") is None
    node.forget("uid-b")
    node.admit([pod("c")])
    assert node.rejection("uid-c") is None and node.used[1].gpus == 1


def test_a_hostile_amount_is_rejected_not_a_crash() -> None:
    node = admission(gpus=64)
    node.admit([pod("huge", gpus="1e400")])
    rejected = node.rejection("uid-huge")
    assert rejected is not None and rejected.reason == "OutOfnvidia.com/gpu"
    assert usage_of(pod("junk", gpus="lots")).gpus == 0  # translate.py fails such a pod


def test_decisions_are_made_once() -> None:
    node = admission(gpus=1)
    node.admit([pod("b", age=5)])
    node.admit([pod("a", age=1)])  # older, but b was bound first: b keeps its GPU
    assert node.rejection("uid-b") is None and node.rejection("uid-a") is not None


@pytest.mark.controlplane
async def test_concurrent_binds_beyond_the_nodes_gpus_are_failed_and_never_rented(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path, gpus="3")
    fast = {"fake.vk-trio.io/boot-seconds": "0.2", "fake.vk-trio.io/start-seconds": "0.2"}
    names = [f"burst-{i}" for i in range(8)]
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        async with trio.open_nursery() as nursery:  # eight binds at once
            for name in names:
                body = gpu_pod(name, config.node_name, restart_policy="Always", annotations=fast)
                nursery.start_soon(lambda b: client.create(PODS, b, namespace=namespace), body)

        async def settled() -> list[Pod] | None:
            listed = (await client.list(PODS, namespace=namespace)).items
            done = [p for p in listed if p.status.phase in ("Running", "Failed")]
            return listed if len(done) == len(names) else None

        pods = await eventually(settled, within=60, what="every pod Running or rejected")
        running = [p for p in pods if p.status.phase == "Running"]
        rejected = [p for p in pods if p.status.phase == "Failed"]
        assert len(running) == 3 and len(rejected) == 5
        for failed in rejected:
            assert failed.status.reason == "OutOfnvidia.com/gpu"
            assert failed.status.message.startswith(REJECTED_PREFIX + "Node didn't have enough")
        cloud = fake_cloud(config)
        live = {i.pod_uid for i in cloud.live_instances()}
        assert live == {p.metadata.uid for p in running}  # none rented for a rejected pod
        assert len(await cloud.list()) == 3
