"""What an independent acceptance run found wrong with RunPod pods (issue 10), on the real
control plane against the simulated RunPod: restarts a user could not see, a second DELETE,
a daemon log that said nothing about money, and "no offer" messages that named nothing."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import trio

from tests.agent_harness import admin_client, eventually, get_pod
from tests.controlplane.launcher import ControlPlane
from tests.providers.runpod.test_runpod_controlplane import (
    PROVIDER_READY,
    events_of,
    pod_manifest,
    runpod_agent,
    runpod_config,
    until_phase,
)
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.sim.runpod import Fault, RunPodSim, Workload

pytestmark = pytest.mark.controlplane


async def test_restarts_of_an_always_pod_show_as_restart_count_last_state_and_backoff(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    """Defect 4: RunPod restarted the container four times while restartCount stayed 0."""
    sim.script_workload("crashy:1", Workload(lines=("up",), duration=3, exit_code=3))
    config = runpod_config(controlplane, tmp_path, sim)
    manifest = pod_manifest("crashy", config.node_name, image="crashy:1", command=["serve"])
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, manifest, namespace=namespace)

        async def restarted_twice() -> Pod | None:
            pod = await get_pod(client, namespace, "crashy")
            statuses = pod.status.container_statuses
            return pod if statuses and statuses[0].restart_count >= 2 else None

        pod = await eventually(restarted_twice, within=60, what="restartCount >= 2")
        events = await events_of(client, namespace, "crashy")
    (status,) = pod.status.container_statuses
    last = status.last_state.terminated
    assert last is not None and last.exit_code == 3 and last.reason == "Error"
    assert status.restart_count <= max(p.restarts for p in sim.pods())  # never more than ran
    assert len(sim.pods(include_terminated=True)) == 1  # restarted in place: one rental
    backoff = [e for e in events if e.reason == "BackOff"]
    assert backoff and "exited with code 3" in backoff[-1].message
    assert pod.status.phase == "Running"


async def test_an_instance_past_its_deadline_is_deleted_once(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, sim: RunPodSim
) -> None:
    """Defect 6: deleting an instance that reached its deadline sent a second DELETE (a 404):
    a list that began before the delete still showed it running."""
    # each list is answered 0.8 s after it was taken: one is nearly always on its way
    sim.add_fault(Fault(operation="listPods", status=None, delay=0.8, apply_first=True, times=None))
    config = runpod_config(controlplane, tmp_path, sim)
    manifest = pod_manifest("late", config.node_name, command=["train"], restart_policy="Never")
    manifest["spec"]["activeDeadlineSeconds"] = 4
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, manifest, namespace=namespace)
        done = await eventually(
            until_phase(client, namespace, "late", "Failed"), within=40, what="Failed"
        )
        assert done.status.reason == "DeadlineExceeded"
        await trio.sleep(4)  # lists and syncs after the delete
    deletes = sim.requests_for("deletePod")
    assert [r.status for r in deletes] == [204]


async def test_the_daemon_log_follows_every_rental_and_termination(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    sim: RunPodSim,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect 7: no log line for a rental (pod, instance, GPU, $/h) or a termination."""
    caplog.set_level(logging.INFO)
    config = runpod_config(controlplane, tmp_path, sim)
    manifest = pod_manifest("billed", config.node_name, command=["serve"])
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, manifest, namespace=namespace)
        await eventually(until_phase(client, namespace, "billed", "Running"), what="Running")
        await trio.sleep(2)
        await client.delete(PODS, "billed", namespace=namespace)

        async def terminated() -> bool:
            await trio.lowlevel.checkpoint()
            return "terminating" in caplog.text

        await eventually(terminated, what="the termination line")
    (pod_id,) = [p.id for p in sim.pods(include_terminated=True)]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    rented = [line for line in lines if line.startswith(f"rented instance {pod_id}")]
    assert rented and re.search(r"1x NVIDIA .* in [A-Z]{2}-[A-Z]+-\d at \$\d+\.\d{3}/h", rented[0])
    ended = [line for line in lines if f"instance {pod_id}" in line and "terminating" in line]
    assert ended and re.search(r"billed about \d+ s", ended[0])
    pods = {
        getattr(r, "context", {}).get("pod") for r in caplog.records if pod_id in r.getMessage()
    }
    assert f"{namespace}/billed" in pods  # the line says whose money it was


@pytest.mark.parametrize(
    "case",
    [
        ({"runpod.io/datacenter-ids": "XX-NOWHERE-1"}, "InvalidAnnotation", "XX-NOWHERE-1"),
        ({"runpod.io/required-gpu-memory": "4096"}, "NoCapacity", ">= 4096 GB per GPU: 0"),
    ],
)
async def test_a_pod_no_offer_fits_says_why_and_its_provider_is_not_ready(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    sim: RunPodSim,
    case: tuple[dict[str, str], str, str],
) -> None:
    """Defect 3: a bad datacenter id or an impossible GPU memory gave only "no offer matches:
    1 GPU(s)" and left vk-trio.io/ProviderReady=True."""
    annotations, reason, named = case
    config = runpod_config(controlplane, tmp_path, sim)
    manifest = pod_manifest("picky", config.node_name, annotations=annotations)
    async with admin_client(controlplane) as client, runpod_agent(config, controlplane, sim):
        await client.create(PODS, manifest, namespace=namespace)

        async def not_ready() -> Pod | None:
            pod = await get_pod(client, namespace, "picky")
            found = [c for c in pod.status.conditions if c.type == PROVIDER_READY]
            return pod if found and found[0].status == "False" else None

        pod = await eventually(not_ready, what="ProviderReady=False")
        events = await events_of(client, namespace, "picky")
    (condition,) = [c for c in pod.status.conditions if c.type == PROVIDER_READY]
    assert condition.reason == reason and named in condition.message
    assert any(e.reason == reason and named in e.message for e in events)
    assert sim.pods() == []
