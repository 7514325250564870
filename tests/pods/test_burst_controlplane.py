"""Burst on the real control plane: a local GPU node (kwok, 2 GPUs) full, managed Jobs overflow.

Each test runs the agent with ``--offload`` (fake cloud, its ledger as the bill) next to a kwok
node that really runs pods, and checks the scheduler and the agent together: what stays local,
what goes to the virtual node and why, and what the user sees (Events, labels, annotations).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx2
import pytest
import trio

from tests.agent_harness import admin_client, agent_config, eventually, fake_cloud, running_agent
from tests.controlplane.launcher import ControlPlane
from tests.pods.burst_support import (
    LONG,
    MANAGED,
    bound_to,
    events_about,
    job_finished,
    job_manifest,
    local_node_full,
    offloaded_to,
    pods_of,
    reasons,
    running_on,
    unschedulable,
)
from vk_trio.kube.resources import JOBS
from vk_trio.pods.burst_policy import OFFLOAD_RULE, OFFLOADED_AT

pytestmark = pytest.mark.controlplane


async def test_jobs_that_fit_stay_local_and_the_one_that_waits_too_long_goes_to_the_cloud(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(
        controlplane, tmp_path, offload=True, pending_job_threshold=5, max_pending_time=4
    )
    vk = config.node_name
    async with (
        admin_client(controlplane) as admin,
        running_agent(config, controlplane) as agent,
        local_node_full(admin, namespace, busy=0) as local,
    ):
        for name in ("first", "second"):
            await admin.create(JOBS, job_manifest(name, run_for=LONG), namespace=namespace)
        for name in ("first", "second"):
            await eventually(
                lambda n=name: running_on(admin, namespace, n, local),  # type: ignore[misc]
                within=60,
                what=f"{name} running locally",
            )
        await admin.create(JOBS, job_manifest("third"), namespace=namespace)
        await eventually(lambda: unschedulable(admin, namespace, "third"), what="third pending")
        pending_at = trio.current_time()
        pod = await eventually(
            lambda: bound_to(admin, namespace, "third", vk), within=30, what="third offloaded"
        )
        assert trio.current_time() - pending_at >= 3  # waited (second-resolution conditions)
        assert pod.metadata.labels.get("runpod.io/managed") == "true"
        assert pod.metadata.annotations[OFFLOAD_RULE] == "max-pending-time"
        assert OFFLOADED_AT in pod.metadata.annotations
        await eventually(
            lambda: job_finished(admin, namespace, "third"), within=60, what="third completes"
        )
        assert await offloaded_to(admin, namespace, "third") == vk
        job_events = await events_about(admin, namespace, "third", kind="Job")
        assert reasons(job_events) == ["Offloaded"]
        assert "--max-pending-time is 4.0s" in job_events[0].message
        pod_events = await events_about(admin, namespace, pod.metadata.name, kind="Pod")
        assert "Offloaded" in reasons(pod_events)
        for name in ("first", "second"):  # the two that fit never left the local node
            assert await running_on(admin, namespace, name, local)
            assert await offloaded_to(admin, namespace, name) == ""
        billed = fake_cloud(config).ledger()
        assert [e.pod_uid for e in billed] == [pod.metadata.uid]
        assert agent.burst.bound == 1 and agent.burst.writes.get("job") == 1
        async with httpx2.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{agent.health_port}/metrics")).text
        assert f'vk_trio_burst_offloaded_total{{node="{vk}"}} 1' in metrics


async def test_threshold_one_with_three_pending_sends_the_oldest_two(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(controlplane, tmp_path, offload=True, pending_job_threshold=1)
    vk = config.node_name
    async with admin_client(controlplane) as admin, local_node_full(admin, namespace):
        for name in ("oldest", "middle", "newest"):
            await admin.create(JOBS, job_manifest(name), namespace=namespace)
            await eventually(
                lambda n=name: unschedulable(admin, namespace, n),  # type: ignore[misc]
                what=f"{name} pending",
            )
            await trio.sleep(1.1)  # distinct Unschedulable times (seconds)
        async with running_agent(config, controlplane) as agent:
            for name in ("oldest", "middle"):
                await eventually(
                    lambda n=name: job_finished(admin, namespace, n),  # type: ignore[misc]
                    within=60,
                    what=f"{name} completes in the cloud",
                )
                assert await offloaded_to(admin, namespace, name) == vk
            await trio.sleep(2 * config.reconcile_interval)  # passes come and go
            assert await bound_to(admin, namespace, "newest", vk) is None
            assert await unschedulable(admin, namespace, "newest")
            assert agent.burst.bound == 2


async def test_the_offload_annotation_sends_a_job_at_once(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(
        controlplane, tmp_path, offload=True, pending_job_threshold=100, max_pending_time=3600
    )
    async with (
        admin_client(controlplane) as admin,
        running_agent(config, controlplane),
        local_node_full(admin, namespace),
    ):
        forced = {**MANAGED, "runpod.io/offload": "true"}
        await admin.create(JOBS, job_manifest("now", annotations=forced), namespace=namespace)
        pod = await eventually(
            lambda: bound_to(admin, namespace, "now", config.node_name), within=15, what="bound"
        )
        assert pod.metadata.annotations[OFFLOAD_RULE] == "offload-annotation"
        await eventually(lambda: job_finished(admin, namespace, "now"), within=60, what="done")


async def test_unmanaged_suspended_and_excluded_jobs_stay_local_whatever_the_rules_say(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(
        controlplane, tmp_path, offload=True, pending_job_threshold=0, max_pending_time=1
    )
    vk = config.node_name
    async with (
        admin_client(controlplane) as admin,
        running_agent(config, controlplane),
        local_node_full(admin, namespace),
    ):
        stranger = {"runpod.io/offload": "true"}  # not managed: never touched
        await admin.create(
            JOBS, job_manifest("stranger", annotations=stranger), namespace=namespace
        )
        await admin.create(JOBS, job_manifest("queued", suspend=True), namespace=namespace)
        picky = job_manifest("picky", pod_spec={"nodeSelector": {"gpu": "a100"}})
        await admin.create(JOBS, picky, namespace=namespace)
        await eventually(lambda: unschedulable(admin, namespace, "stranger"), what="pending")

        async def picky_told() -> list[str]:
            return reasons(await events_about(admin, namespace, "picky", kind="Job"))

        assert await eventually(picky_told, within=20, what="the Event on picky") == [
            "NotOffloaded"
        ]
        job_event = (await events_about(admin, namespace, "picky", kind="Job"))[0]
        assert job_event.type == "Warning"
        assert "nodeSelector gpu=a100 excludes the virtual node " + vk in job_event.message
        (picky_pod,) = await pods_of(admin, namespace, "picky")
        pod_events = await events_about(admin, namespace, picky_pod.metadata.name, kind="Pod")
        assert reasons(pod_events) == ["NotOffloaded"]
        await trio.sleep(2 * config.reconcile_interval)
        for name in ("stranger", "picky"):
            assert await bound_to(admin, namespace, name, vk) is None
            assert await unschedulable(admin, namespace, name)
        assert await pods_of(admin, namespace, "queued") == []
        assert await events_about(admin, namespace, "stranger", kind="Job") == []
        assert await events_about(admin, namespace, "queued", kind="Job") == []
        assert reasons(await events_about(admin, namespace, "picky", kind="Job")) == [
            "NotOffloaded"
        ]  # said once, not once per pass
        assert fake_cloud(config).ledger() == []


async def test_local_capacity_freed_before_the_rule_fires_runs_the_job_locally_unbilled(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(
        controlplane, tmp_path, offload=True, pending_job_threshold=5, max_pending_time=20
    )
    async with (
        admin_client(controlplane) as admin,
        running_agent(config, controlplane) as agent,
        local_node_full(admin, namespace) as local,
    ):
        await admin.create(JOBS, job_manifest("patient"), namespace=namespace)
        await eventually(lambda: unschedulable(admin, namespace, "patient"), what="pending")
        await admin.delete(JOBS, "busy-0", namespace=namespace, propagation_policy="Background")
        await eventually(
            lambda: job_finished(admin, namespace, "patient"), within=60, what="runs locally"
        )
        (pod,) = await pods_of(admin, namespace, "patient")
        assert pod.spec.node_name == local
        assert await offloaded_to(admin, namespace, "patient") == ""
        assert fake_cloud(config).ledger() == [] and agent.burst.bound == 0


async def test_later_pods_of_an_offloaded_job_follow_it(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, kwok: subprocess.Popen[bytes]
) -> None:
    config = agent_config(controlplane, tmp_path, offload=True, pending_job_threshold=0)
    vk = config.node_name
    failing = {"fake.vk-trio.io/exit-code": "1"}
    async with (
        admin_client(controlplane) as admin,
        running_agent(config, controlplane),
        local_node_full(admin, namespace),
    ):
        manifest = job_manifest("retry", backoff_limit=1, pod_annotations=failing)
        await admin.create(JOBS, manifest, namespace=namespace)

        async def two_attempts_in_the_cloud() -> bool:
            pods = await pods_of(admin, namespace, "retry")
            return len(pods) == 2 and all(p.status.phase == "Failed" for p in pods)

        await eventually(
            two_attempts_in_the_cloud, within=90, what="both attempts fail in the cloud"
        )
        pods = await pods_of(admin, namespace, "retry")
        assert {p.spec.node_name for p in pods} == {vk}
        rules = sorted(p.metadata.annotations[OFFLOAD_RULE] for p in pods)
        assert rules == ["follows-job", "pending-job-threshold"]
        assert len(fake_cloud(config).ledger()) == 2
