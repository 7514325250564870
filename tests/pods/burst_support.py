"""The cluster of the burst tests: a full local GPU node (kwok), managed Jobs, what to look at.

Every test registers its own local node (kwok runs its pods) next to its own virtual node, in
its own namespace. Jobs are written the way seed 002's users write them: no toleration, no
nodeSelector for the virtual node, ``nvidia.com/gpu`` in the limits, the managed annotation on
the Job. ``sim.vk-trio.io/run-for`` says how long a pod runs on the local node;
``fake.vk-trio.io/*`` how it runs in the fake cloud.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from tests.agent_harness import eventually
from tests.controlplane.kwok_nodes import RUN_FOR, add_local_gpu_node
from vk_trio.errors import KubeError
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, Job, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, JOBS, NODES, PODS
from vk_trio.pods.burst_policy import OFFLOADED_TO

MANAGED = {"runpod.io/managed": "true"}
CLOUD_QUICK = {
    "fake.vk-trio.io/boot-seconds": "0.3",
    "fake.vk-trio.io/start-seconds": "0.3",
    "fake.vk-trio.io/run-seconds": "1",
}
LONG = "600s"  # a local Job that holds its GPU for the whole test


def job_manifest(
    name: str,
    *,
    annotations: Mapping[str, str] | None = None,
    run_for: str = "2s",
    gpus: int = 1,
    backoff_limit: int = 0,
    pod_annotations: Mapping[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    template_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "work",
                "image": "nvidia/cuda:12.4.1-base-ubuntu22.04",
                "command": ["nvidia-smi", "-L"],
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }
        ],
    }
    template_spec.update(spec.pop("pod_spec", {}))
    return {
        "metadata": {
            "name": name,
            "annotations": dict(MANAGED if annotations is None else annotations),
        },
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {
                    "annotations": {RUN_FOR: run_for, **CLOUD_QUICK, **(pod_annotations or {})}
                },
                "spec": template_spec,
            },
            **spec,
        },
    }


@asynccontextmanager
async def local_node_full(client: KubeClient, ns: str, *, busy: int = 2) -> AsyncIterator[str]:
    """A local node with 2 GPUs, ``busy`` of them held by unmanaged long Jobs; its name.

    Afterwards the namespace's Jobs are deleted before the node, so that no Job controller
    recreates a pod that a later test's local node would run."""
    name = f"local-{secrets.token_hex(3)}"
    await add_local_gpu_node(client, name, gpus=2)
    try:
        await _occupy(client, ns, name, busy)
        yield name
    finally:
        with trio.CancelScope(shield=True):
            listed: ObjectList[Job] = await client.list(JOBS, namespace=ns)
            for job in listed.items:
                with contextlib.suppress(KubeError):
                    await client.delete(
                        JOBS, job.metadata.name, namespace=ns, propagation_policy="Background"
                    )
            with contextlib.suppress(KubeError):
                await client.delete(NODES, name)


async def _occupy(client: KubeClient, ns: str, name: str, busy: int) -> None:
    for index in range(busy):
        await client.create(
            JOBS, job_manifest(f"busy-{index}", annotations={}, run_for=LONG), namespace=ns
        )
    for index in range(busy):
        try:
            await eventually(
                lambda i=index: running_on(client, ns, f"busy-{i}", name),  # type: ignore[misc]
                within=60,
                what=f"busy-{index} running on {name}",
            )
        except AssertionError as exc:
            there: ObjectList[Pod] = await client.list(PODS, field_selector=f"spec.nodeName={name}")
            on_node = [f"{p.metadata.namespace}/{p.metadata.name}" for p in there.items]
            raise AssertionError(f"{exc}; the node runs {on_node}") from None


async def pods_of(client: KubeClient, ns: str, job: str) -> list[Pod]:
    listed: ObjectList[Pod] = await client.list(
        PODS, namespace=ns, label_selector=f"job-name={job}"
    )
    return listed.items


async def running_on(client: KubeClient, ns: str, job: str, node: str) -> bool:
    pods = await pods_of(client, ns, job)
    return any(p.spec.node_name == node and p.status.phase == "Running" for p in pods)


async def bound_to(client: KubeClient, ns: str, job: str, node: str) -> Pod | None:
    pods = await pods_of(client, ns, job)
    return next((p for p in pods if p.spec.node_name == node), None)


async def unschedulable(client: KubeClient, ns: str, job: str) -> bool:
    pods = await pods_of(client, ns, job)
    return any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for p in pods
        for c in p.status.conditions
    )


async def job_finished(client: KubeClient, ns: str, job: str) -> Job | None:
    found: Job = await client.get(JOBS, job, namespace=ns)
    done = any(c.type == "Complete" and c.status == "True" for c in found.status.conditions)
    return found if done else None


async def offloaded_to(client: KubeClient, ns: str, job: str) -> str:
    found: Job = await client.get(JOBS, job, namespace=ns)
    return found.metadata.annotations.get(OFFLOADED_TO, "")


async def events_about(client: KubeClient, ns: str, name: str, *, kind: str) -> list[Event]:
    listed: ObjectList[Event] = await client.list(
        EVENTS,
        namespace=ns,
        field_selector=f"involvedObject.name={name},involvedObject.kind={kind}",
    )
    return [e for e in listed.items if e.source.component == "vk-trio"]


def reasons(events: list[Event]) -> list[str]:
    return sorted(e.reason for e in events)
