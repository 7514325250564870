"""Burst under stress, on the real control plane: kill -9 mid-offload, two virtual nodes racing,
and seed 002's own README example Job, unchanged, on the simulated RunPod."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
import trio

from tests.agent_harness import (
    AgentProcess,
    admin_client,
    agent_config,
    delete_node,
    eventually,
    fake_cloud,
    running_agent,
)
from tests.controlplane.launcher import ControlPlane
from tests.pods.burst_support import (
    events_about,
    job_finished,
    job_manifest,
    local_node_full,
    offloaded_to,
    pods_of,
)
from tests.sim.runpod.support import API_KEY
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.kube.client import KubeClient
from vk_trio.kube.resources import JOBS
from vk_trio.providers import registry
from vk_trio.providers.base import Provider
from vk_trio.sim.runpod import RunPodSim, Timings, seed_workloads

pytestmark = pytest.mark.controlplane

SEED_002_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: my-gpu-job
  annotations:
    runpod.io/managed: "true"
    runpod.io/offload: "true"
    runpod.io/required-gpu-memory: "16"
spec:
  template:
    spec:
      containers:
      - name: my-container
        image: my-gpu-image:latest
        resources:
          requests:
            nvidia.com/gpu: 1
          limits:
            nvidia.com/gpu: 1
      restartPolicy: Never
"""


async def bound_count(client: KubeClient, ns: str, jobs: list[str], node: str) -> int:
    pods = [p for job in jobs for p in await pods_of(client, ns, job)]
    return sum(p.spec.node_name == node for p in pods)


async def test_kill_9_mid_offload_binds_no_pod_twice_and_rents_no_instance_twice(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(controlplane, tmp_path, namespace=namespace)
    slow = ("--offload", "--pending-job-threshold=0", "--kube-api-qps=4", "--kube-api-burst=1")
    jobs = [f"job-{i:02d}" for i in range(16)]
    async with (
        admin_client(controlplane) as admin,
        local_node_full(admin, namespace),
    ):
        for name in jobs:
            await admin.create(JOBS, job_manifest(name), namespace=namespace)
        agent = AgentProcess(config, tmp_path / "agent.log", *slow)
        await agent.start()
        try:
            bound = await eventually(
                lambda: bound_count(admin, namespace, jobs, config.node_name),
                within=60,
                what="the first bindings",
            )
            await agent.kill9()
            assert bound < len(jobs), "the kill came too late to be mid-offload"
            await agent.start()
            for name in jobs:
                await eventually(
                    lambda n=name: job_finished(admin, namespace, n),  # type: ignore[misc]
                    within=120,
                    what=f"{name} completes in the cloud",
                )
        finally:
            await agent.stop()
        pods = [p for name in jobs for p in await pods_of(admin, namespace, name)]
        assert len(pods) == len(jobs) and {p.spec.node_name for p in pods} == {config.node_name}
        for name in jobs:
            assert await offloaded_to(admin, namespace, name) == config.node_name
        for pod in pods:  # one decision per pod, even across the kill
            said = await events_about(admin, namespace, pod.metadata.name, kind="Pod")
            assert [e.count for e in said if e.reason == "Offloaded"] in ([1], []), said
        rented = Counter(entry.pod_uid for entry in fake_cloud(config).ledger())
        assert set(rented) == {p.metadata.uid for p in pods}
        assert set(rented.values()) == {1}, rented
        await delete_node(admin, config.node_name)


async def test_two_virtual_nodes_share_the_work_with_nothing_done_twice(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    jobs = [f"pair-{i}" for i in range(8)]
    configs = [
        agent_config(
            controlplane,
            tmp_path / side,
            offload=True,
            pending_job_threshold=0,
            namespace=namespace,
        )
        for side in ("a", "b")
    ]
    async with admin_client(controlplane) as admin, local_node_full(admin, namespace):
        for name in jobs:
            await admin.create(JOBS, job_manifest(name), namespace=namespace)
        for name in jobs:
            await eventually(
                lambda n=name: pods_of(admin, namespace, n),  # type: ignore[misc]
                what=f"{name} has its pod",
            )
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with (
            running_agent(configs[0], controlplane) as first,
            running_agent(configs[1], controlplane) as second,
        ):
            for name in jobs:
                await eventually(
                    lambda n=name: job_finished(admin, namespace, n),  # type: ignore[misc]
                    within=90,
                    what=f"{name} completes",
                )
            agents: list[Agent] = [first, second]
            assert sum(a.burst.bound for a in agents) == len(jobs)
            assert sum(a.burst.writes.get("job", 0) for a in agents) == len(jobs)
            lost = sum(a.burst.lost_races for a in agents)
            bindings = sum(a.burst.writes.get("binding", 0) for a in agents)
            assert bindings == len(jobs) + lost  # the only extra work: a losing Binding
        ledgers = [fake_cloud(c).ledger() for c in configs]
        assert sum(len(entries) for entries in ledgers) == len(jobs)
        for name in jobs:
            assert await offloaded_to(admin, namespace, name) in {c.node_name for c in configs}


FAST = Timings(provisioning=1, starting=1, ports_delay=0.5)


@asynccontextmanager
async def runpod_agent(config: Config, cp: ControlPlane, sim: RunPodSim) -> AsyncIterator[Agent]:
    env = {"RUNPOD_API_KEY": API_KEY}
    mirrored = msgspec.structs.replace(config, registry_mirror=sim.registry_url)

    async def make_provider(nursery: trio.Nursery) -> Provider:
        return await registry.build(mirrored, nursery, env)

    async with running_agent(config, cp, make_provider=make_provider) as agent:
        yield agent


async def test_seed_002_readme_job_goes_to_runpod_unchanged(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    kwok: subprocess.Popen[bytes],
    nursery: trio.Nursery,
) -> None:
    sim = RunPodSim(api_key=API_KEY, timings=FAST)
    for image, workload in seed_workloads().items():
        sim.script_workload(image, workload)
    await nursery.start(sim.serve)
    config = agent_config(
        controlplane, tmp_path, provider="runpod", runpod_api_url=sim.url, offload=True
    )
    async with (
        admin_client(controlplane) as admin,
        local_node_full(admin, namespace),
        runpod_agent(config, controlplane, sim),
    ):
        await trio.to_thread.run_sync(
            lambda: controlplane.kubectl("apply", "-n", namespace, "-f", "-", stdin=SEED_002_JOB)
        )
        await eventually(
            lambda: job_finished(admin, namespace, "my-gpu-job"),
            within=120,
            what="the seed's Job completes on RunPod",
        )
        listed = await trio.to_thread.run_sync(
            controlplane.kubectl(
                "get", "pods", "-n", namespace, "-l", "runpod.io/managed=true", "-o", "name"
            ).stdout.split
        )
        (pod,) = await pods_of(admin, namespace, "my-gpu-job")
        assert listed == [f"pod/{pod.metadata.name}"]
        assert pod.spec.node_name == config.node_name
        annotations = await trio.to_thread.run_sync(
            lambda: (
                controlplane.kubectl(
                    "get",
                    "job",
                    "my-gpu-job",
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.metadata.annotations}",
                ).stdout
            )
        )
        assert f'"vk-trio.io/offloaded-to":"{config.node_name}"' in annotations
        assert len({segment.pod_id for segment in sim.ledger.segments}) == 1

        async def nothing_billed() -> bool:
            return sim.billing() == []

        await eventually(nothing_billed, within=30, what="the RunPod pod is terminated")


async def test_with_leader_election_only_the_leader_offloads(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(
        controlplane,
        tmp_path,
        offload=True,
        pending_job_threshold=0,
        leader_elect=True,
        namespace=namespace,
    )
    jobs = [f"led-{i}" for i in range(4)]
    async with (
        admin_client(controlplane) as admin,
        local_node_full(admin, namespace),
        running_agent(config, controlplane) as first,
        running_agent(config, controlplane, keep_node=True) as second,
    ):
        for name in jobs:
            await admin.create(JOBS, job_manifest(name), namespace=namespace)
        for name in jobs:
            await eventually(
                lambda n=name: job_finished(admin, namespace, n),  # type: ignore[misc]
                within=90,
                what=f"{name} completes",
            )
        replicas = [first, second]
        leaders = [a for a in replicas if a.elector is not None and a.elector.state.is_leader]
        assert len(leaders) == 1
        (standby,) = [a for a in replicas if a is not leaders[0]]
        assert leaders[0].burst.bound == len(jobs)
        assert standby.burst.passes == 0 and standby.burst.writes == {}
