"""pods/status.py against a real kube-apiserver: every patch is accepted, stored as sent, and a
second sync with nothing new patches nothing.

The pure tests assume how the API server validates, stores and normalises a pod's status; this
checks those assumptions on the server itself, through a pod's whole life (waiting, creating,
running behind a readiness gate, a user-fixable problem, a crash and restart, completion).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.agent_harness import admin_client
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import NODES, PODS
from vk_trio.pods.record import PodRecord, Terminated, Waiting
from vk_trio.pods.status import PROVIDER_READY, pod_status, status_patch
from vk_trio.providers.base import Instance, InstanceState

pytestmark = pytest.mark.controlplane

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)  # sub-second on purpose
GATE = "example.com/lb"


@pytest.fixture
async def client(controlplane: ControlPlane) -> AsyncIterator[KubeClient]:
    async with admin_client(controlplane) as kube:
        yield kube


@pytest.fixture
async def node(client: KubeClient) -> AsyncIterator[str]:
    """A Node object for the pod to be bound to (no agent behind it: we write the status)."""
    name = f"status-test-{secrets.token_hex(3)}"
    await client.create(NODES, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        await client.delete(NODES, name)


def instance(state: InstanceState, *, attempt: int = 0, **fields: object) -> Instance:
    return Instance(
        instance_id=f"i-{attempt}",
        node_name="n",
        pod_uid="u",
        attempt=attempt,
        state=state,
        image="busybox:1.36",
        public_ip="203.0.113.9",
        started_at=T0 + timedelta(seconds=40 + 100 * attempt, microseconds=123),
        **fields,  # type: ignore[arg-type]
    )


async def sync(client: KubeClient, pod: Pod, record: PodRecord, now: datetime) -> Pod:
    """What the reconciler does: compute, PATCH only a difference, and check the round trip."""
    new = pod_status(pod, record, now=now, host_ip="10.0.0.7", provider="fake")
    patch = status_patch(pod.status, new)
    if patch is not None:
        pod = await client.patch(
            PODS, pod.metadata.name, patch, namespace=pod.metadata.namespace, subresource="status"
        )
    assert status_patch(pod.status, new) is None, "the server stored what we sent"
    again = pod_status(
        pod, record, now=now + timedelta(minutes=1), host_ip="10.0.0.7", provider="fake"
    )
    assert status_patch(pod.status, again) is None, "nothing new, nothing to patch"
    return pod


async def test_a_pods_whole_life_is_accepted_and_stored_by_the_api_server(
    client: KubeClient, namespace: str, node: str
) -> None:
    manifest = {
        "metadata": {"name": "train"},
        "spec": {
            "nodeName": node,
            "restartPolicy": "OnFailure",
            "readinessGates": [{"conditionType": GATE}],
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                }
            ],
        },
    }
    pod = await client.create(PODS, manifest, namespace=namespace)
    assert pod.status.qos_class == "Guaranteed"  # set by the API server, kept by us
    record = PodRecord(uid=pod.metadata.uid, start_time=T0)
    now = T0

    pod = await sync(client, pod, record, now)
    assert pod.status.phase == "Pending"

    now += timedelta(seconds=20)
    record.instance = instance(InstanceState.PROVISIONING, message="pulling busybox:1.36")
    record.problem = Waiting(reason="InvalidAnnotation", message="runpod.io/gpu-type: 'H900'?")
    pod = await sync(client, pod, record, now)
    conditions = {c.type: c for c in pod.status.conditions}
    assert conditions[PROVIDER_READY].status == "False"
    assert conditions["PodReadyToStartContainers"].status == "True"

    now += timedelta(seconds=30)
    record.instance = instance(InstanceState.RUNNING, ready=True)
    record.problem = None
    pod = await sync(client, pod, record, now)
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip == "203.0.113.9"
    ready = {c.type: c for c in pod.status.conditions}["Ready"]
    assert (ready.status, ready.reason) == ("False", "ReadinessGatesNotReady")

    # Another controller flips the readiness gate; the next sync keeps it and becomes Ready.
    gate = {"type": GATE, "status": "True", "lastTransitionTime": "2026-03-01T12:01:00Z"}
    conditions_json = [msgspec.to_builtins(c) for c in pod.status.conditions] + [gate]
    gated = {"status": {"conditions": conditions_json}}
    pod = await client.patch(PODS, "train", gated, namespace=namespace, subresource="status")
    now += timedelta(seconds=10)
    pod = await sync(client, pod, record, now)
    conditions = {c.type: c for c in pod.status.conditions}
    assert conditions["Ready"].status == "True"
    assert conditions[GATE].status == "True"

    now += timedelta(seconds=50)
    record.last_terminated = Terminated(
        exit_code=1, reason="Error", started_at=T0, finished_at=now, instance_id="i-0"
    )
    record.attempt, record.restarts, record.instance = 1, 1, None
    record.waiting = Waiting(reason="CrashLoopBackOff", message="back-off 10s")
    pod = await sync(client, pod, record, now)
    (container,) = pod.status.container_statuses
    assert (pod.status.phase, container.restart_count, pod.status.pod_ip) == ("Running", 1, "")

    now += timedelta(seconds=15)
    record.waiting, record.instance = None, instance(InstanceState.RUNNING, attempt=1, ready=True)
    pod = await sync(client, pod, record, now)

    now += timedelta(minutes=5)
    record.final = Terminated(
        exit_code=0, reason="Completed", started_at=T0, finished_at=now, instance_id="i-1"
    )
    pod = await sync(client, pod, record, now)
    assert pod.status.phase == "Succeeded"
    (container,) = pod.status.container_statuses
    assert container.state.terminated is not None
    assert container.state.terminated.container_id == "fake://i-1"

    # Terminal is final: a stale record that says "running" changes nothing.
    record.final, record.instance = None, instance(InstanceState.RUNNING, attempt=1, ready=True)
    assert pod_status(pod, record, now=now, host_ip="10.0.0.7") is pod.status
