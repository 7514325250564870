"""Running the node agent with the Vast.ai provider in a test: its config and provider (pacing
shrunk as the simulator's limits are), and the manifests the control-plane tests submit,
seed 003's Deployment first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tests.agent_harness import agent_config, running_agent
from tests.controlplane.launcher import ControlPlane
from tests.sim.vastai.support import API_KEY
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.kube.resources import Resource
from vk_trio.providers import registry
from vk_trio.providers.base import Provider
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.pacing import DEFAULT_INTERVALS
from vk_trio.sim.vastai import VastSim, Workload

SCALE = 0.05  # Vast.ai's per-endpoint intervals, shrunk for the simulator and the provider
BUDGET = 150.0  # seconds any one test may take, agent start and stop included
NOTE = "vastai.vk-trio.io/"
QUICK = Workload(provision_seconds=0.5, create_seconds=0.5, load_seconds=1.0, entrypoint=())
SERVICE_IMAGE = "example/service:1"
DEPLOYMENTS: Resource[dict[str, Any]] = Resource(
    "apis/apps/v1", "deployments", True, dict, "Deployment"
)

# Seed 003's README: the annotations its users put on their GPU pods.
SEED_ANNOTATIONS = {
    "vast.ai/gpu-type": "RTX 3060",
    "vast.ai/gpu-fallbacks": "RTX 3060 Ti,RTX 4060,RTX 4070,RTX 3090",
    "vast.ai/price-max": "0.30",
    "vast.ai/region": "North America",
    "vast.ai/memory": "12GB",
    "vast.ai/disk": "50GB",
}
VAST_TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists"}


def vast_config(cp: ControlPlane, tmp_path: Path, sim: VastSim, **overrides: Any) -> Config:
    overrides.setdefault("registry_mirror", sim.registry_url)
    return agent_config(cp, tmp_path, provider="vastai", vast_api_url=sim.url, **overrides)


@asynccontextmanager
async def vast_agent(
    config: Config, cp: ControlPlane, sim: VastSim, *, keep_node: bool = False
) -> AsyncIterator[Agent]:
    """The agent with the provider the registry builds for a key and the simulator's URL, its
    pacing shrunk as the simulator's limits are; bounded by ``BUDGET``."""
    env = {"VAST_API_KEY": API_KEY}

    async def make_provider(nursery: trio.Nursery) -> Provider:
        provider = await registry.build(config, nursery, env)
        assert isinstance(provider, VastProvider)
        provider.client.pacer.intervals = {
            name: seconds * SCALE for name, seconds in DEFAULT_INTERVALS.items()
        }
        provider.follow_poll_seconds = 0.5
        provider.markers.job_poll = provider.markers.always_poll = 0.5
        return provider

    async with running_agent(
        config, cp, make_provider=make_provider, within=BUDGET, keep_node=keep_node
    ) as agent:
        yield agent


def pod_manifest(
    name: str,
    node: str,
    *,
    image: str = SERVICE_IMAGE,
    command: list[str] | None = None,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "gpu",
        "image": image,
        "resources": {"limits": {"nvidia.com/gpu": 1}},
    }
    if command:
        container["command"] = command
    return {
        "metadata": {"name": name, "annotations": {"vast.ai/region": "North America"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart_policy,
            "containers": [container],
            "tolerations": [VAST_TOLERATION],
        },
    }


def seed_003_deployment(node: str) -> dict[str, Any]:
    """Seed 003's GPU services Deployment: speech-to-text and text-to-speech on ports 8000 and
    8001, pinned to the virtual node, with the README's ``vast.ai/*`` annotations. Probes,
    emptyDir volumes and optional ConfigMap/Secret env are kept: users' manifests have them."""
    optional = [
        ("LIVEKIT_URL", "configMapKeyRef", "june-config", "livekit-url"),
        ("BEARER_TOKEN", "secretKeyRef", "june-secrets", "bearer-token"),
    ]
    env: list[dict[str, Any]] = [
        {"name": "TTS_PORT", "value": "8000"},
        {"name": "STT_PORT", "value": "8001"},
        {"name": "WHISPER_DEVICE", "value": "cuda"},
    ] + [
        {"name": var, "valueFrom": {ref: {"name": obj, "key": key, "optional": True}}}
        for var, ref, obj, key in optional
    ]
    probe = {"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 30}
    labels = {"app": "june-gpu-services", "component": "gpu-services"}
    return {
        "metadata": {"name": "june-gpu-services", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "june-gpu-services"}},
            "template": {
                "metadata": {"labels": labels, "annotations": SEED_ANNOTATIONS},
                "spec": {
                    "nodeName": node,
                    "tolerations": [
                        {"key": "vast.ai/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {
                            "key": "virtual-kubelet.io/provider",
                            "operator": "Equal",
                            "value": "vast",
                            "effect": "NoSchedule",
                        },
                    ],
                    "containers": [
                        {
                            "name": "june-multi-gpu",
                            "image": "ozzuworld/june-multi-gpu:latest",
                            "ports": [
                                {"containerPort": 8000, "name": "tts-api", "protocol": "TCP"},
                                {"containerPort": 8001, "name": "stt-api", "protocol": "TCP"},
                            ],
                            "env": env,
                            "resources": {
                                "limits": {"nvidia.com/gpu": 1, "memory": "16Gi", "cpu": "8"},
                                "requests": {"nvidia.com/gpu": 1, "memory": "12Gi", "cpu": "4"},
                            },
                            "volumeMounts": [{"name": "models-cache", "mountPath": "/app/models"}],
                            "startupProbe": probe,
                            "readinessProbe": probe,
                        }
                    ],
                    "volumes": [{"name": "models-cache", "emptyDir": {"sizeLimit": "10Gi"}}],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 60,
                },
            },
        },
    }


def gpu_job(
    name: str, node: str, *, image: str, command: list[str] | None = None
) -> dict[str, Any]:
    """Seed 000's Job shape (no command: the image's own), on the Vast.ai node."""
    template = pod_manifest(name, node, image=image, restart_policy="Never")
    del template["metadata"]["name"]
    return {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template}}
