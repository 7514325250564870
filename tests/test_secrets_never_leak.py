"""Canary secrets planted in a Secret-backed env var never show up anywhere a user can look:
the agent's logs (text and JSON, debug level), Events, pod annotations and pod status."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent_harness import admin_client, agent_config, eventually, gpu_pod, running_agent
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.models import Event, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, PODS, SECRETS
from vk_trio.logs import REDACTED, scrub, setup_logging

pytestmark = pytest.mark.controlplane

CANARY = "canary-8b1e6f0c-secret-value"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_secret_env_values_never_reach_logs_events_or_the_pod(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, log_format: str
) -> None:
    logs = io.StringIO()
    setup_logging("debug", log_format, stream=logs)
    config = agent_config(controlplane, tmp_path)
    env: list[dict[str, Any]] = [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "hf"}}},
        {"name": "AUTH", "value": "Bearer $(HF_TOKEN)"},  # derived from the secret
        {
            "name": "MISSING",
            "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "nope", "optional": True}},
        },
    ]
    pod = gpu_pod(
        "canary",
        config.node_name,
        env=env,
        annotations={
            "fake.vk-trio.io/boot-seconds": "0.2",
            "fake.vk-trio.io/start-seconds": "0.2",
            "fake.vk-trio.io/run-seconds": "1",
            "fake.vk-trio.io/exit-code": "1",
        },
    )
    async with admin_client(controlplane) as client, running_agent(config, controlplane):
        await client.create(
            SECRETS,
            {"metadata": {"name": "tokens"}, "stringData": {"hf": CANARY}},
            namespace=namespace,
        )
        await client.create(PODS, pod, namespace=namespace)

        async def finished() -> Pod | None:
            current: Pod = await client.get(PODS, "canary", namespace=namespace)
            return current if current.status.phase in ("Succeeded", "Failed") else None

        done = await eventually(finished, what="the pod to finish")
        events: ObjectList[Event] = await client.list(EVENTS, namespace=namespace)
        uid = done.metadata.uid
        # the pod's secret (and the value derived from it) is scrubbed from the pod's own lines
        # and Events while it exists, and only from those: it is the pod's, not the operator's
        assert scrub(f"x {CANARY} y", pod_uid=uid) == f"x {REDACTED} y"
        assert CANARY not in scrub(f"Bearer {CANARY}", pod_uid=uid)
        assert scrub(f"x {CANARY} y") == f"x {CANARY} y"
        await client.delete(PODS, "canary", namespace=namespace)

        async def forgotten() -> bool:
            return scrub(CANARY, pod_uid=uid) == CANARY  # dropped when the pod went

        await eventually(forgotten, what="the pod's secrets to be dropped")
    assert events.items, "the agent wrote Events (Scheduled, Started, ...)"
    everything = [
        logs.getvalue(),
        json.dumps([[e.reason, e.message] for e in events.items]),
        json.dumps(done.metadata.annotations),
        json.dumps([c.message for c in done.status.conditions] + [done.status.message]),
    ]
    for text in everything:
        assert CANARY not in text
    assert logs.getvalue(), "logging was live during the run"
