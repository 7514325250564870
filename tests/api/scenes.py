"""One agent per provider for the kubelet API tests: the fake, the simulated RunPod and the
simulated Vast.ai, each scripted to run a container that prints known lines at a known pace.

``Scene.workload(image, lines, seconds, exit_code)`` scripts what an image does on that provider;
``Scene.pod(...)`` is a pod manifest that runs it on the agent's node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from tests.agent_harness import admin_client, agent_config, eventually, running_agent
from tests.controlplane.launcher import ControlPlane
from tests.providers.vastai.controlplane_support import SCALE, vast_agent, vast_config
from tests.sim.runpod.support import API_KEY as RUNPOD_KEY
from tests.sim.vastai.support import API_KEY as VAST_KEY
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.kube.resources import NODES
from vk_trio.providers import registry
from vk_trio.providers.base import Provider
from vk_trio.sim.runpod import RunPodSim, Timings
from vk_trio.sim.runpod import Workload as RunPodWorkload
from vk_trio.sim.vastai import VastSim
from vk_trio.sim.vastai import Workload as VastWorkload
from vk_trio.sim.vastai.ratelimit import RateLimits

PROVIDERS = ("fake", "runpod", "vastai")
TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists"}


@dataclass
class Scene:
    provider: str
    config: Config
    agent: Agent
    runpod: RunPodSim | None = None
    vast: VastSim | None = None
    scripted: dict[str, tuple[tuple[str, ...], float, int]] = field(default_factory=dict)

    @property
    def stamps_lines(self) -> bool:
        """Does the provider give each log line its time? (Vast.ai's logs are plain text.)"""
        return self.provider != "vastai"

    def workload(
        self, image: str, lines: tuple[str, ...], *, seconds: float, exit_code: int = 0
    ) -> None:
        """``image`` prints ``lines`` evenly over ``seconds`` and exits with ``exit_code``."""
        self.scripted[image] = (lines, seconds, exit_code)
        if self.runpod is not None:
            interval = seconds / max(len(lines), 1)
            workload = RunPodWorkload(
                lines=lines, line_interval=interval, duration=seconds, exit_code=exit_code
            )
            self.runpod.script_workload(image, workload)
        if self.vast is not None:
            self.vast.script(
                image,
                VastWorkload(
                    provision_seconds=0.3,
                    create_seconds=0.3,
                    load_seconds=0.5,
                    run_seconds=seconds,
                    exit_code=exit_code,
                    logs=lines,
                    entrypoint=(),
                ),
            )

    def pod_spec(self, image: str, *, restart_policy: str) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": "main",
            "image": image,
            "command": ["/app/run"],
            "resources": {"limits": {"nvidia.com/gpu": 1}},
        }
        annotations: dict[str, str] = {}
        if self.provider == "fake":
            lines, seconds, code = self.scripted[image]
            annotations = {
                "fake.vk-trio.io/logs": "\n".join(lines),
                "fake.vk-trio.io/run-seconds": str(seconds),
                "fake.vk-trio.io/exit-code": str(code),
                "fake.vk-trio.io/boot-seconds": "0.2",
                "fake.vk-trio.io/start-seconds": "0.2",
            }
        return {
            "metadata": {"annotations": annotations},
            "spec": {
                "nodeName": self.config.node_name,
                "restartPolicy": restart_policy,
                "containers": [container],
                "tolerations": [TOLERATION],
            },
        }

    def pod(self, name: str, image: str, *, restart_policy: str = "Never") -> dict[str, Any]:
        manifest = self.pod_spec(image, restart_policy=restart_policy)
        manifest["metadata"]["name"] = name
        return manifest


async def kubelet_advertised(agent: Agent, cp: ControlPlane) -> None:
    """Until the Node names the port the kubelet API listens on. With ``--kubelet-port 0`` the
    Node is created before the API binds its port, and an API server that reads port 0 dials
    its default, 10250: a ``kubectl logs`` that early would be refused."""
    api = agent.api
    assert api is not None
    with trio.fail_after(30):
        await api.ready.wait()
    async with admin_client(cp) as admin:

        async def advertised() -> bool:
            node = await admin.get(NODES, agent.config.node_name)
            return node.status.daemon_endpoints.kubelet_endpoint.port == api.port

        await eventually(advertised, within=30, what="the Node to advertise the kubelet port")


@asynccontextmanager
async def scene(
    provider: str, cp: ControlPlane, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Scene]:
    overrides.setdefault("reconcile_interval", "2")
    if provider == "fake":
        config = agent_config(cp, tmp_path, **overrides)
        async with running_agent(config, cp) as agent:
            await kubelet_advertised(agent, cp)
            yield Scene(provider, config, agent)
        return
    async with trio.open_nursery() as nursery:
        if provider == "runpod":
            runpod = RunPodSim(
                api_key=RUNPOD_KEY, timings=Timings(provisioning=0.3, starting=0.3, ports_delay=0.2)
            )
            await nursery.start(runpod.serve)
            config = agent_config(
                cp,
                tmp_path,
                provider="runpod",
                runpod_api_url=runpod.url,
                registry_mirror=runpod.registry_url,
                **overrides,
            )
            env = {"RUNPOD_API_KEY": RUNPOD_KEY}

            async def make_provider(inner: trio.Nursery) -> Provider:
                return await registry.build(config, inner, env)

            async with running_agent(config, cp, make_provider=make_provider) as agent:
                await kubelet_advertised(agent, cp)
                yield Scene(provider, config, agent, runpod=runpod)
        else:
            # vast_agent shrinks the provider's pacing by SCALE: the cloud's limits shrink alike
            vast = VastSim(api_keys=[VAST_KEY], rate_limits=RateLimits().scaled(SCALE))
            await nursery.start(vast.serve)
            config = vast_config(cp, tmp_path, vast, **overrides)
            async with vast_agent(config, cp, vast) as agent:
                await kubelet_advertised(agent, cp)
                yield Scene(provider, config, agent, vast=vast)
        nursery.cancel_scope.cancel()
