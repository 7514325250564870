"""The reconciler's kubelet semantics on the real control plane, with the fake provider.

Restarts with CrashLoopBackOff, activeDeadlineSeconds, an instance that vanishes, pods the
provider cannot run, invalid annotations: each ends in the status a kubelet would write, with
an Event a user can act on, and never with an instance left billing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, PODS

pytestmark = pytest.mark.controlplane

FAST = {"fake.vk-trio.io/boot-seconds": "0.2", "fake.vk-trio.io/start-seconds": "0.2"}


async def get_pod(client: KubeClient, ns: str, name: str) -> Pod:
    pod: Pod = await client.get(PODS, name, namespace=ns)
    return pod


async def event_counts(client: KubeClient, ns: str, name: str) -> dict[str, int]:
    listed: ObjectList[Event] = await client.list(
        EVENTS, namespace=ns, field_selector=f"involvedObject.name={name}"
    )
    counts: dict[str, int] = {}
    for event in listed.items:
        counts[event.reason] = counts.get(event.reason, 0) + event.count
    return counts


async def reasons(client: KubeClient, ns: str, name: str) -> set[str]:
    return set(await event_counts(client, ns, name))


async def test_on_failure_restarts_with_crashloop_backoff_and_a_growing_restart_count(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    pod = gpu_pod(
        "crashy",
        config.node_name,
        restart_policy="OnFailure",
        annotations={
            **FAST,
            "fake.vk-trio.io/run-seconds": "0.5",
            "fake.vk-trio.io/exit-code": "2",
        },
    )
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(PODS, pod, namespace=namespace)

        async def backing_off() -> Pod | None:
            current = await get_pod(client, namespace, "crashy")
            statuses = current.status.container_statuses
            waiting = statuses[0].state.waiting if statuses else None
            if waiting is not None and waiting.reason == "CrashLoopBackOff":
                return current
            return None

        first = await eventually(backing_off, what="CrashLoopBackOff")
        status = first.status.container_statuses[0]
        assert status.restart_count == 1
        assert status.last_state.terminated is not None
        assert status.last_state.terminated.exit_code == 2
        assert first.status.phase == "Running"  # OnFailure keeps restarting: not terminal

        async def restarted_twice() -> bool:
            current = await get_pod(client, namespace, "crashy")
            statuses = current.status.container_statuses
            return bool(statuses) and statuses[0].restart_count >= 2

        await eventually(restarted_twice, within=40, what="second restart after 10 s backoff")
        assert "BackOff" in await reasons(client, namespace, "crashy")
        assert len(fake_cloud(config).live_instances()) <= 1


async def test_active_deadline_fails_the_pod_and_stops_the_instance(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    pod = gpu_pod("deadline", config.node_name, annotations=FAST)
    pod["spec"]["activeDeadlineSeconds"] = 3
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(PODS, pod, namespace=namespace)

        async def failed() -> Pod | None:
            current = await get_pod(client, namespace, "deadline")
            return current if current.status.phase == "Failed" else None

        done = await eventually(failed, within=20, what="DeadlineExceeded")
        assert done.status.reason == "DeadlineExceeded"
        cloud = fake_cloud(config)

        async def stopped() -> bool:
            await trio.lowlevel.checkpoint()
            return not cloud.live_instances()

        await eventually(stopped, what="instance deleted")


async def test_an_instance_that_vanishes_fails_the_pod_with_137(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(
            PODS, gpu_pod("victim", config.node_name, annotations=FAST), namespace=namespace
        )

        async def running() -> bool:
            return (await get_pod(client, namespace, "victim")).status.phase == "Running"

        await eventually(running, what="Running")
        cloud = fake_cloud(config)
        (instance,) = cloud.live_instances()
        await cloud.delete(instance.instance_id)  # the cloud loses the machine behind our back

        async def failed() -> Pod | None:
            current = await get_pod(client, namespace, "victim")
            return current if current.status.phase == "Failed" else None

        done = await eventually(failed, what="Failed after the instance vanished")
        terminated = done.status.container_statuses[0].state.terminated
        assert terminated is not None and terminated.exit_code == 137


async def test_a_pod_with_two_containers_fails_with_a_reason_naming_the_field(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    pod: dict[str, Any] = gpu_pod("two", config.node_name, annotations=FAST)
    pod["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(PODS, pod, namespace=namespace)

        async def failed() -> Pod | None:
            current = await get_pod(client, namespace, "two")
            return current if current.status.phase == "Failed" else None

        done = await eventually(failed, what="Failed for two containers")
        assert "spec.containers" in done.status.message
        assert not fake_cloud(config).ledger(), "nothing may be rented for an impossible pod"


async def test_an_invalid_annotation_waits_with_an_event_and_a_condition_without_crashing(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    bad = gpu_pod(
        "bad-annotation", config.node_name, annotations={**FAST, "fake.vk-trio.io/exit-code": "abc"}
    )
    good = gpu_pod("good", config.node_name, annotations=FAST)
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(PODS, bad, namespace=namespace)
        await client.create(PODS, good, namespace=namespace)

        async def flagged() -> Pod | None:
            current = await get_pod(client, namespace, "bad-annotation")
            problem = [
                c for c in current.status.conditions if c.status == "False" and "abc" in c.message
            ]
            return current if problem else None

        waiting = await eventually(flagged, what="a condition naming the bad value")
        assert waiting.status.phase == "Pending"
        assert "InvalidAnnotation" in await reasons(client, namespace, "bad-annotation")

        async def good_runs() -> bool:
            return (await get_pod(client, namespace, "good")).status.phase == "Running"

        await eventually(good_runs, what="the other pod still runs")


async def test_a_pods_life_is_told_in_the_kubelets_events_once_even_across_a_restart(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(controlplane, tmp_path)
    pod = gpu_pod("told", config.node_name, restart_policy="Always", annotations=FAST)
    lifecycle = {"Scheduled": 1, "Created": 1, "Started": 1}

    async def told() -> dict[str, int] | None:
        counts = await event_counts(client, namespace, "told")
        return counts if all(reason in counts for reason in lifecycle) else None

    async with admin_client(controlplane) as client:
        async with running_agent(config, controlplane, keep_node=True):
            await client.create(PODS, pod, namespace=namespace)
            assert await eventually(told, what="Scheduled, Created and Started") == lifecycle
        # the agent restarts and adopts the running instance: nothing new happened to the pod
        async with running_agent(config, controlplane):
            await trio.sleep(3 * config.fast_interval + 1)
            assert await event_counts(client, namespace, "told") == lifecycle
            await client.delete(PODS, "told", namespace=namespace)

            async def killing() -> bool:
                return "Killing" in await event_counts(client, namespace, "told")

            await eventually(killing, what="Killing")


async def test_a_pod_waiting_for_capacity_does_not_keep_the_status_loop_fast(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Defect 5: while a pod waited for capacity the status loop listed at the fast interval
    for the whole wait (124 lists in 4 minutes). Waiting is not transitioning."""
    config = agent_config(controlplane, tmp_path)  # fast 0.5 s, steady 3 s
    pod = gpu_pod("waits", config.node_name, annotations=FAST)
    pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "16"  # no such offer
    async with admin_client(controlplane) as client, running_agent(config, controlplane) as agent:
        await client.create(PODS, pod, namespace=namespace)

        async def waiting() -> bool:
            return "NoCapacity" in await reasons(client, namespace, "waits")

        await eventually(waiting, what="the NoCapacity Event")
        await trio.sleep(2)
        before = sum(c[("list", "ok")] for c in agent.provider_calls.values())
        await trio.sleep(15)
        lists = sum(c[("list", "ok")] for c in agent.provider_calls.values()) - before
        current = await get_pod(client, namespace, "waits")
    assert lists <= 8, f"{lists} lists in 15 s while only waiting for capacity"  # fast: 30
    (provider_ready,) = [
        c for c in current.status.conditions if c.type == "vk-trio.io/ProviderReady"
    ]
    assert provider_ready.status == "False" and provider_ready.reason == "NoCapacity"
