"""The node agent with the RunPod provider, on the real control plane, against the simulated
RunPod over real HTTP: the seeds' Job and pod, exit codes, readiness, capacity, faults, billing,
annotations. Each test runs its own agent (own node) and its own simulator in its trio loop; the
simulator's ledger proves what was rented and what is still billed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.agent_harness import (
    admin_client,
    agent_config,
    delete_node,
    eventually,
    get_pod,
    pod_gone,
    running_agent,
    unique_node,
)
from tests.controlplane.launcher import ControlPlane
from tests.sim.runpod.support import API_KEY
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.demo_job import seed_job
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, Job, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, JOBS, PODS
from vk_trio.providers import registry
from vk_trio.providers.base import Provider
from vk_trio.sim.runpod import Fault, RunPodSim, Timings, Workload, seed_workloads

pytestmark = pytest.mark.controlplane

FAST = Timings(provisioning=1, starting=1, ports_delay=0.5)
PROVIDER_READY = "vk-trio.io/ProviderReady"
SERVICE_IMAGE = "example/service:1"  # unscripted: runs until stopped


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[RunPodSim]:
    simulator = RunPodSim(api_key=API_KEY, timings=FAST)
    for image, workload in seed_workloads().items():
        simulator.script_workload(image, workload)
    await nursery.start(simulator.serve)
    yield simulator


def runpod_config(cp: ControlPlane, tmp_path: Path, sim: RunPodSim, **overrides: Any) -> Config:
    overrides.setdefault("registry_mirror", sim.registry_url)
    return agent_config(cp, tmp_path, provider="runpod", runpod_api_url=sim.url, **overrides)


@asynccontextmanager
async def runpod_agent(config: Config, cp: ControlPlane, sim: RunPodSim) -> AsyncIterator[Agent]:
    """The agent with the provider the registry builds for a key and the simulator's URL."""
    env = {"RUNPOD_API_KEY": API_KEY}

    async def make_provider(nursery: trio.Nursery) -> Provider:
        return await registry.build(config, nursery, env)

    async with running_agent(config, cp, make_provider=make_provider) as agent:
        yield agent


def pod_manifest(
    name: str,
    node: str,
    *,
    image: str = SERVICE_IMAGE,
    command: list[str] | None = None,
    restart_policy: str = "Always",
    annotations: dict[str, str] | None = None,
    ports: list[int] | None = None,
) -> dict[str, Any]:
    """Seed 001's pod shape: a GPU, the taint's toleration, the virtual-kubelet nodeSelector."""
    container: dict[str, Any] = {
        "name": "gpu-container",
        "image": image,
        "resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}},
    }
    if command:
        container["command"] = command
    if ports:
        container["ports"] = [{"containerPort": p} for p in ports]
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "containers": [container],
            "restartPolicy": restart_policy,
            "nodeSelector": {"type": "virtual-kubelet", "kubernetes.io/hostname": node},
            "tolerations": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "operator": "Equal",
                    "value": "runpod",
                    "effect": "NoSchedule",
                }
            ],
        },
    }


def until_phase(
    client: KubeClient, ns: str, name: str, *phases: str
) -> Callable[[], Awaitable[Pod | None]]:
    async def probe() -> Pod | None:
        pod = await get_pod(client, ns, name)
        return pod if pod.status.phase in phases else None

    return probe


async def events_of(client: KubeClient, ns: str, name: str) -> list[Event]:
    listed: ObjectList[Event] = await client.list(
        EVENTS, namespace=ns, field_selector=f"involvedObject.name={name}"
    )
    return listed.items


async def job_done(client: KubeClient, ns: str, name: str) -> str | None:
    job: Job = await client.get(JOBS, name, namespace=ns)
    for condition in job.status.conditions:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type
    return None


async def nothing_billed(sim: RunPodSim) -> bool:
    await trio.lowlevel.checkpoint()
    return not sim.billing()


def exit_code(pod: Pod) -> int | None:
    terminated = pod.status.container_statuses[0].state.terminated
    return None if terminated is None else terminated.exit_code


# --- the seeds' examples ---------------------------------------------------------------------


async def test_seed_000_job_without_a_command_completes_with_exit_code_0_and_nothing_billed(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    config = runpod_config(controlplane, tmp_path, sim)
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(JOBS, seed_job("gpu-workload", config.node_name), namespace=namespace)
        outcome = await eventually(
            lambda: job_done(client, namespace, "gpu-workload"), within=90, what="Job done"
        )
        assert outcome == "Complete"
        pods: ObjectList[Pod] = await client.list(
            PODS, namespace=namespace, label_selector="job-name=gpu-workload"
        )
        (pod,) = pods.items
        assert pod.status.phase == "Succeeded" and exit_code(pod) == 0
        gpu = pod.metadata.annotations["runpod.io/gpu-type"]
        assert sim.catalog.gpus[gpu].memory_gb >= 16
        await eventually(lambda: nothing_billed(sim), what="nothing billed")
    (rented,) = sim.pods(include_terminated=True)
    assert rented.image == "my-gpu-image:latest"
    assert "python train.py" in rented.args  # the image's CMD, read from its registry, wrapped


async def test_seed_001_pod_runs_nvidia_smi_and_succeeds(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    config = runpod_config(controlplane, tmp_path, sim)
    pod = pod_manifest(
        "gpu-workload",
        config.node_name,
        image="nvidia/cuda:11.7.1-base-ubuntu22.04",
        command=["nvidia-smi", "-L"],
        restart_policy="Never",  # seed 001's pod has none (Always): it would restart forever
    )
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, pod, namespace=namespace)
        done = await eventually(
            until_phase(client, namespace, "gpu-workload", "Succeeded", "Failed"), within=60
        )
        assert done.status.phase == "Succeeded" and exit_code(done) == 0
        (rented,) = sim.pods(include_terminated=True)
        assert any(entry.line.startswith("GPU 0:") for entry in sim.logs(rented.id))


async def test_a_nonzero_exit_code_fails_the_pod_with_that_code(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    sim.script_workload("trainer", Workload(duration=2, exit_code=3))
    config = runpod_config(controlplane, tmp_path, sim)
    pod = pod_manifest(
        "exits-3", config.node_name, image="trainer:1", command=["train"], restart_policy="Never"
    )
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, pod, namespace=namespace)
        done = await eventually(until_phase(client, namespace, "exits-3", "Succeeded", "Failed"))
        assert done.status.phase == "Failed"
        terminated = done.status.container_statuses[0].state.terminated
        assert terminated is not None and (terminated.exit_code, terminated.reason) == (3, "Error")
        await eventually(lambda: nothing_billed(sim), what="nothing billed")


# --- readiness and capacity ------------------------------------------------------------------


async def test_a_tcp_port_keeps_the_pod_running_but_not_ready_until_it_is_mapped(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    sim.timings = Timings(provisioning=1, starting=1, ports_delay=0.5, tcp_delay=6)
    config = runpod_config(controlplane, tmp_path, sim)
    seen: list[tuple[str, bool]] = []

    async def ready() -> bool:
        pod = await get_pod(client, namespace, "sshd")
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
        if not seen or seen[-1] != (pod.status.phase, ready):
            seen.append((pod.status.phase, ready))
        return ready

    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(
            PODS, pod_manifest("sshd", config.node_name, ports=[22]), namespace=namespace
        )
        await eventually(ready, within=60, what="pod Ready")
    assert ("Running", False) in seen
    assert seen.index(("Running", False)) < seen.index(("Running", True))


async def test_no_capacity_keeps_the_pod_pending_with_a_warning_until_stock_returns(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    for gpu, dc, cloud in list(sim.catalog.stock):
        sim.set_stock(gpu, dc, cloud, 0)
    config = runpod_config(controlplane, tmp_path, sim)
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, pod_manifest("waits", config.node_name), namespace=namespace)

        async def warned() -> bool:
            return any(
                e.type == "Warning" and e.reason == "NoCapacity"
                for e in await events_of(client, namespace, "waits")
            )

        await eventually(warned, what="a NoCapacity Warning")
        assert (await get_pod(client, namespace, "waits")).status.phase == "Pending"
        assert sim.pods() == []
        sim.set_stock("NVIDIA RTX A5000", "EU-SE-1", "SECURE", 1)
        running = await eventually(until_phase(client, namespace, "waits", "Running"), within=60)
        assert running.metadata.annotations["runpod.io/gpu-type"] == "NVIDIA RTX A5000"
        assert running.metadata.annotations["runpod.io/datacenter"] == "EU-SE-1"


# --- faults and billing ----------------------------------------------------------------------


async def test_429_storms_and_a_create_500_that_created_leave_one_instance_per_pod(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    sim.add_fault(Fault(operation="createPod", status=500, apply_first=True, times=2))
    sim.add_fault(Fault(operation="*", status=429, retry_after=1, times=25))
    config = runpod_config(controlplane, tmp_path, sim)
    names = [f"svc-{i}" for i in range(3)]
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        for name in names:
            await client.create(PODS, pod_manifest(name, config.node_name), namespace=namespace)
        for name in names:
            await eventually(until_phase(client, namespace, name, "Running"), within=90)
        pods = [await get_pod(client, namespace, name) for name in names]
    instance_names = sorted(p.name for p in sim.pods())
    assert len(instance_names) == len(set(instance_names)) == 3
    assert sorted(p.metadata.annotations["runpod.io/pod-id"] for p in pods) == sorted(
        p.id for p in sim.pods()
    )


async def test_deleting_a_pod_leaves_nothing_billed_after_one_fast_interval(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    config = runpod_config(controlplane, tmp_path, sim)
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, pod_manifest("runner", config.node_name), namespace=namespace)
        await eventually(until_phase(client, namespace, "runner", "Running"), within=60)
        assert sim.billing()
        started = trio.current_time()
        await client.delete(PODS, "runner", namespace=namespace)
        await eventually(lambda: nothing_billed(sim), within=30, what="nothing billed")
        assert trio.current_time() - started <= config.fast_interval + 1.0

        await eventually(lambda: pod_gone(client, namespace, "runner"), what="pod gone")


# --- annotations -----------------------------------------------------------------------------


async def test_an_invalid_annotation_warns_sets_a_condition_and_waits_while_others_run(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    config = runpod_config(controlplane, tmp_path, sim)
    bad = pod_manifest(
        "bad", config.node_name, annotations={"runpod.io/required-gpu-memory": "abc"}
    )
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, bad, namespace=namespace)
        await client.create(PODS, pod_manifest("good", config.node_name), namespace=namespace)

        async def flagged() -> Pod | None:
            pod = await get_pod(client, namespace, "bad")
            conditions = {c.type: c for c in pod.status.conditions}
            condition = conditions.get(PROVIDER_READY)
            return pod if condition is not None and condition.status == "False" else None

        pod = await eventually(flagged, what="the ProviderReady=False condition")
        condition = next(c for c in pod.status.conditions if c.type == PROVIDER_READY)
        assert condition.reason == "InvalidAnnotation"
        assert "runpod.io/required-gpu-memory" in condition.message
        assert pod.status.phase == "Pending"
        events = await events_of(client, namespace, "bad")
        assert any(e.type == "Warning" and e.reason == "InvalidAnnotation" for e in events)
        await eventually(until_phase(client, namespace, "good", "Running"), within=60)
        assert (await get_pod(client, namespace, "bad")).status.phase == "Pending"
    assert len(sim.pods()) == 1


async def test_annotations_are_read_from_the_owning_job_when_the_pod_has_none(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    config = runpod_config(controlplane, tmp_path, sim)
    job = seed_job("big", config.node_name)
    job["metadata"]["annotations"] = {
        "runpod.io/required-gpu-memory": "48",
        "runpod.io/cloud-type": "COMMUNITY",
    }
    assert "annotations" not in job["spec"]["template"].get("metadata", {})
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(JOBS, job, namespace=namespace)
        assert await eventually(lambda: job_done(client, namespace, "big"), within=90) == "Complete"
    (rented,) = sim.pods(include_terminated=True)
    assert rented.gpu_id == "NVIDIA L40S" and rented.cloud == "COMMUNITY"


# --- vk-trio run ------------------------------------------------------------------------------


async def test_vk_trio_run_without_a_key_runs_seed_001_on_the_embedded_simulator_and_says_so(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    node = unique_node()
    argv = [
        *(sys.executable, "-m", "vk_trio", "run", "--provider", "runpod", "--nodename", node),
        *("--kubeconfig", str(controlplane.kubeconfig), "--node-ip", "127.0.0.1"),
        *("--fast-interval", "0.5", "--reconcile-interval", "2"),
        *("--health-server-address", "127.0.0.1:0"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    log_path = tmp_path / "agent.log"
    pod = pod_manifest(
        "seed-001",
        node,
        image="nvidia/cuda:11.7.1-base-ubuntu22.04",
        command=["nvidia-smi", "-L"],
        restart_policy="Never",
    )
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            argv, stdout=log, stderr=log, env=env, cwd=str(Path(__file__).parents[3])
        )
    try:
        async with admin_client(controlplane) as client:
            await client.create(PODS, pod, namespace=namespace)
            done = await eventually(
                until_phase(client, namespace, "seed-001", "Succeeded", "Failed"), within=90
            )
            assert done.status.phase == "Succeeded" and exit_code(done) == 0
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(30):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        async with admin_client(controlplane) as client:
            await delete_node(client, node)
    assert process.returncode == 0
    assert "EMBEDDED SIMULATED RunPod" in log_path.read_text()
