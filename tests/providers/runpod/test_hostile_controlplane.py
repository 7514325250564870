"""Hostile input against the whole node, on the real control plane with the simulated RunPod:
an instance that crashed every start of the agent, and a private image that one namespace may
read and another may not."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import trio

from tests.agent_harness import admin_client, eventually, get_pod
from tests.controlplane.launcher import ControlPlane
from tests.providers.runpod.test_runpod_controlplane import (
    pod_manifest,
    runpod_agent,
    runpod_config,
    sim,
    until_phase,
)
from tests.sim.runpod.support import API_KEY
from vk_trio.kube.resources import PODS, SECRETS
from vk_trio.providers.base import InstanceSpec, InstanceState, NoCapacity, Requirements
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.sim.runpod import RunPodSim, Workload

pytestmark = pytest.mark.controlplane
__all__ = ["sim"]  # the simulator fixture, shared with the RunPod control plane tests

FORGED = "vk-trio:exit-code=" + "9" * 5000  # int() refuses more than 4,300 digits


async def test_an_orphan_whose_log_crashed_every_start_is_cleaned_up_and_the_agent_runs(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    config = runpod_config(controlplane, tmp_path, sim)
    sim.script_workload("forger:1", Workload(lines=(FORGED,), duration=None))
    rented = RunPodProvider(config.node_name, api_key=API_KEY, base_url=sim.url)
    spec = InstanceSpec(
        node_name=config.node_name,
        namespace=namespace,
        pod_name="long-gone",
        pod_uid="orphan-uid",
        image="forger:1",
        command=("forge",),
        restart_policy="Never",
        need=Requirements(gpu_count=1),
    )
    try:
        for offer in await rented.offers(spec.need):
            try:
                await rented.create(spec, offer)
                break
            except NoCapacity:
                continue

        async def printed() -> bool:  # running, its forged marker in the log, and read
            (pod,) = sim.pods()
            if not any(entry.line == FORGED for entry in sim.logs(pod.id)):
                return False
            listed = await rented.list()  # raised ValueError here, inside an ExceptionGroup
            return [i.state for i in listed] == [InstanceState.RUNNING]

        await eventually(printed, what="the orphan to print its forged marker")
    finally:
        await rented.aclose()
    # the pod this instance belonged to is long gone; the agent starts (it died here before,
    # on every start, because its first list read that log) and deletes the orphan
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, pod_manifest("fresh", config.node_name), namespace=namespace)
        await eventually(until_phase(client, namespace, "fresh", "Running"), what="a new pod")

        async def orphan_deleted() -> bool:
            await trio.lowlevel.checkpoint()
            return all(p.name.split(".")[-2] != "orphan-uid" for p in sim.pods())

        await eventually(orphan_deleted, what="the orphan to be deleted")


async def test_a_private_image_read_with_one_namespaces_secret_is_not_run_for_another(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    other = f"{namespace[:50]}-b"
    controlplane.kubectl("create", "namespace", other)
    config = runpod_config(controlplane, tmp_path, sim)
    image = "acme/private-trainer:1"
    sim.script_workload(
        image, Workload(cmd=("python", "train.py"), duration=2, registry_username="robot")
    )
    auth = base64.b64encode(b"robot:s3cret").decode()
    config_json = json.dumps({"auths": {"docker.io": {"auth": auth}}}).encode()
    try:
        async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
            await client.create(
                SECRETS,
                {
                    "metadata": {"name": "pull"},
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": base64.b64encode(config_json).decode()},
                },
                namespace=namespace,
            )
            owner = pod_manifest(
                "with-secret", config.node_name, image=image, restart_policy="Never"
            )
            owner["spec"]["imagePullSecrets"] = [{"name": "pull"}]
            await client.create(PODS, owner, namespace=namespace)
            await eventually(
                until_phase(client, namespace, "with-secret", "Succeeded"),
                within=90,
                what="the pod with the secret to run its image's CMD",
            )
            # same image, another tenant, no secret: the cached config is not theirs to use
            stranger = pod_manifest(
                "no-secret", config.node_name, image=image, restart_policy="Never"
            )
            await client.create(PODS, stranger, namespace=other)
            failed = await eventually(
                until_phase(client, other, "no-secret", "Failed"), what="the stranger to fail"
            )
            assert "refused to show it" in failed.status.message
            assert len(sim.pods(include_terminated=True)) == 1  # nothing rented for it
            assert (await get_pod(client, namespace, "with-secret")).status.phase == "Succeeded"
    finally:
        controlplane.kubectl("delete", "namespace", other, "--wait=false")
