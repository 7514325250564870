"""The node agent with the Vast.ai provider, on the real control plane, against the simulated
Vast.ai over real HTTP: seed 003's Deployment, Jobs and their exit codes, vanished offers and
429 storms, deletion, and a restart that adopts what it owns and destroys its orphans.

Each test runs its own agent (own node) and its own simulator in its trio loop. The simulator
keeps Vast.ai's rate limits, shrunk by ``SCALE`` (and the provider's pacing with them), so the
tests are quick without the client ever being allowed to go faster than Vast.ai allows. Its
ledger and instances prove what was rented and what is still billed.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from tests.agent_harness import (
    admin_client,
    delete_node,
    eventually,
    get_pod,
    pod_gone,
    unique_node,
)
from tests.controlplane.launcher import ControlPlane
from tests.providers.runpod.test_runpod_controlplane import (
    exit_code,
    job_done,
    until_phase,
)
from tests.providers.vastai.controlplane_support import (
    BUDGET,
    DEPLOYMENTS,
    NOTE,
    QUICK,
    SCALE,
    SERVICE_IMAGE,
    gpu_job,
    pod_manifest,
    seed_003_deployment,
    vast_agent,
    vast_config,
)
from tests.sim.vastai.support import API_KEY
from vk_trio.kube.models import ObjectList, Pod
from vk_trio.kube.resources import JOBS, PODS
from vk_trio.sim.vastai import RateLimits, VastSim, seed_workloads, trio_clock

pytestmark = pytest.mark.controlplane


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[VastSim]:
    simulator = VastSim(
        api_keys=[API_KEY],
        clock=trio_clock(time.time() - trio.current_time()),
        rate_limits=RateLimits().scaled(SCALE),
    )
    for image, workload in seed_workloads().items():
        simulator.script(image, workload)
    simulator.script(SERVICE_IMAGE, QUICK)
    await nursery.start(simulator.serve)
    yield simulator
    assert simulator.violations == []  # every answer the document allows
    assert simulator.rejected == []  # every request the document allows
    assert simulator.ignored_filters == []


def labels_of(sim: VastSim) -> list[str | None]:
    return [instance.label for instance in sim.instances()]


async def nothing_billed(sim: VastSim) -> bool:
    await trio.lowlevel.checkpoint()
    return not sim.ledger.accruing()


def is_ready(pod: Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


# --- seed 003 --------------------------------------------------------------------------------


async def test_seed_003_deployment_runs_ready_on_the_instances_public_ip_with_its_annotations(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    config = vast_config(controlplane, tmp_path, sim)
    async with admin_client(controlplane) as client, vast_agent(config, controlplane, sim):
        await client.create(DEPLOYMENTS, seed_003_deployment(config.node_name), namespace=namespace)

        async def ready_pod() -> Pod | None:
            listed: ObjectList[Pod] = await client.list(
                PODS, namespace=namespace, label_selector="app=june-gpu-services"
            )
            ready = [p for p in listed.items if p.status.phase == "Running" and is_ready(p)]
            return ready[0] if ready else None

        pod = await eventually(ready_pod, within=60, what="the Deployment's pod Running, Ready")
        (instance,) = sim.instances()
        offer = instance.offer
        assert pod.status.pod_ip == offer.public_ipaddr and pod.status.pod_ip
        notes = pod.metadata.annotations
        assert notes[NOTE + "instance-id"] == str(instance.id)
        assert notes[NOTE + "machine-id"] == str(offer.machine_id)
        assert notes[NOTE + "gpu"] == "1x RTX 3060"
        assert notes[NOTE + "geolocation"] == offer.geolocation == "Quebec, CA"  # cheapest in NA
        price = float(notes[NOTE + "price-per-hour"])
        assert price == pytest.approx(offer.dph_total(50), abs=1e-4) and price <= 0.30
        assert notes[NOTE + "port-8000-tcp"] == f"{offer.public_ipaddr}:{offer.direct_port_start}"
        assert instance.disk == 50 and instance.image == "ozzuworld/june-multi-gpu:latest"
        assert {"-p 8000:8000", "-p 8001:8001", "TTS_PORT"} <= set(instance.env)
        assert instance.label == f"vk-trio/{config.node_name}/{pod.metadata.uid}.0"


# --- Jobs ------------------------------------------------------------------------------------


async def test_a_job_without_a_command_runs_its_images_cmd_and_succeeds_with_exit_code_0(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    config = vast_config(controlplane, tmp_path, sim)
    job = gpu_job("train", config.node_name, image="my-gpu-image:latest")
    async with admin_client(controlplane) as client, vast_agent(config, controlplane, sim):
        await client.create(JOBS, job, namespace=namespace)
        done = await eventually(lambda: job_done(client, namespace, "train"), within=60)
        assert done == "Complete"
        pods: ObjectList[Pod] = await client.list(
            PODS, namespace=namespace, label_selector="job-name=train"
        )
        (pod,) = pods.items
        assert pod.status.phase == "Succeeded" and exit_code(pod) == 0
        await eventually(lambda: nothing_billed(sim), within=10, what="nothing billed")
    (charge,) = sim.ledger.charges()
    assert charge.label is not None and charge.label.endswith("/job")
    assert charge.gpu_usd > 0  # it ran, and stopped costing when it ended


async def test_a_nonzero_exit_code_fails_the_pod_with_that_code(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    sim.script("trainer", replace(QUICK, run_seconds=1.0, exit_code=3, logs=("diverged",)))
    config = vast_config(controlplane, tmp_path, sim)
    pod = pod_manifest(
        "exits-3", config.node_name, image="trainer:1", command=["train"], restart_policy="Never"
    )
    async with admin_client(controlplane) as client, vast_agent(config, controlplane, sim):
        await client.create(PODS, pod, namespace=namespace)
        done = await eventually(
            until_phase(client, namespace, "exits-3", "Succeeded", "Failed"), within=60
        )
        assert done.status.phase == "Failed"
        terminated = done.status.container_statuses[0].state.terminated
        assert terminated is not None and (terminated.exit_code, terminated.reason) == (3, "Error")
        await eventually(lambda: nothing_billed(sim), within=10, what="nothing billed")


# --- faults and billing ----------------------------------------------------------------------


async def test_vanished_offers_a_lost_create_answer_and_429_storms_leave_one_instance_per_pod(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    gone = {"success": False, "error": "no_such_ask", "msg": "Instance type is no longer available"}
    config = vast_config(controlplane, tmp_path, sim)
    names = [f"svc-{i}" for i in range(3)]
    async with admin_client(controlplane) as client, vast_agent(config, controlplane, sim):
        sim.fail_next("createInstance", status=410, body=gone, times=2)  # bought by someone else
        sim.fail_next("createInstance", status=504, text="gateway timeout", after=True)  # lost
        sim.fail_next("*", status=429, text="API requests too frequent", times=30)
        for name in names:
            await client.create(PODS, pod_manifest(name, config.node_name), namespace=namespace)
        for name in names:
            await eventually(until_phase(client, namespace, name, "Running"), within=60)
        pods = [await get_pod(client, namespace, name) for name in names]
    rented = sim.instances()
    assert len(rented) == len(sim.ledger.charges()) == 3  # nothing else was ever rented
    assert sorted(labels_of(sim)) == sorted(  # type: ignore[type-var]
        f"vk-trio/{config.node_name}/{pod.metadata.uid}.0" for pod in pods
    )
    assert sorted(p.metadata.annotations[NOTE + "instance-id"] for p in pods) == sorted(
        str(i.id) for i in rented
    )
    assert sim.limiter.refused == {}  # the storm was scripted: our own pacing never broke a limit


async def test_deleting_a_pod_leaves_nothing_billed_after_one_fast_interval(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    config = vast_config(controlplane, tmp_path, sim)
    async with admin_client(controlplane) as client, vast_agent(config, controlplane, sim):
        await client.create(PODS, pod_manifest("runner", config.node_name), namespace=namespace)
        await eventually(until_phase(client, namespace, "runner", "Running"), within=60)
        assert sim.ledger.accruing()
        started = trio.current_time()
        await client.delete(PODS, "runner", namespace=namespace)
        await eventually(lambda: nothing_billed(sim), within=30, what="nothing billed")
        assert trio.current_time() - started <= config.fast_interval + 1.0

        await eventually(lambda: pod_gone(client, namespace, "runner"), what="pod gone")
    assert sim.instances() == []


# --- restart ---------------------------------------------------------------------------------


async def test_a_restarted_agent_adopts_its_instances_and_destroys_only_its_orphans(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: VastSim
) -> None:
    config = vast_config(controlplane, tmp_path, sim)
    node = config.node_name
    async with admin_client(controlplane) as client:
        try:
            async with vast_agent(config, controlplane, sim, keep_node=True):
                await client.create(PODS, pod_manifest("keeper", node), namespace=namespace)
                await eventually(until_phase(client, namespace, "keeper", "Running"), within=60)
            (kept,) = sim.instances()
            # while the agent is down: an instance labelled for this node whose pod is gone,
            # and instances that are not this node's (another node, another tool, no label)
            orphan = sim.rent_foreign(label=f"vk-trio/{node}/{secrets.token_hex(8)}.0")
            foreign = [
                sim.rent_foreign(label=f"vk-trio/other-{node}/{secrets.token_hex(8)}.0"),
                sim.rent_foreign(label="my-notebook"),
                sim.rent_foreign(label=None),
            ]
            async with vast_agent(config, controlplane, sim, keep_node=True):

                async def orphan_destroyed() -> bool:
                    await trio.lowlevel.checkpoint()
                    return sim.instance(orphan) is None

                await eventually(orphan_destroyed, within=30, what="the orphan destroyed")
                pod = await get_pod(client, namespace, "keeper")
                assert pod.status.phase == "Running"
                assert pod.metadata.annotations[NOTE + "instance-id"] == str(kept.id)
        finally:
            await delete_node(client, node)
    assert [i.id for i in sim.instances()] == [kept.id, *foreign]  # adopted, untouched
    assert len(sim.ledger.charges()) == 5  # the keeper was never rented again


# --- vk-trio run ------------------------------------------------------------------------------


async def test_vk_trio_run_without_a_key_runs_seed_003_on_the_embedded_simulator_and_says_so(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    node = unique_node("vast")
    argv = [
        *(sys.executable, "-m", "vk_trio", "run", "--provider", "vastai"),
        *("--kubeconfig", str(controlplane.kubeconfig), "--node-ip", "127.0.0.1"),
        *("--fast-interval", "0.5", "--reconcile-interval", "2"),
        *("--health-server-address", "127.0.0.1:0"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST_", "VK_TRIO_"))}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env["NODE_NAME"] = node  # seed 003's variable
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            argv, stdout=log, stderr=log, env=env, cwd=str(Path(__file__).parents[3])
        )
    try:
        with trio.fail_after(BUDGET):
            async with admin_client(controlplane) as client:
                deployment = seed_003_deployment(node)
                await client.create(DEPLOYMENTS, deployment, namespace=namespace)

                async def running() -> Pod | None:
                    listed: ObjectList[Pod] = await client.list(
                        PODS, namespace=namespace, label_selector="app=june-gpu-services"
                    )
                    up = [p for p in listed.items if p.status.phase == "Running"]
                    return up[0] if up and up[0].status.pod_ip else None

                pod = await eventually(running, within=90, what="seed 003's pod Running")
                assert pod.metadata.annotations[NOTE + "gpu"] == "1x RTX 3060"
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
    assert "EMBEDDED SIMULATED Vast.ai" in log_path.read_text()
