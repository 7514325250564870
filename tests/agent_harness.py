"""Running the node agent in a test: its config, an admin client, and polling helpers.

Every test gets its own node name, so tests sharing the session's control plane never see each
other's pods or instances, and the node is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import math
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from tests.controlplane.launcher import ControlPlane
from vk_trio.config import Config, load_config
from vk_trio.daemon import Agent, run_agent
from vk_trio.errors import KubeError, NotFound
from vk_trio.kube.auth import resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import NODES, PODS
from vk_trio.providers.base import Provider
from vk_trio.providers.fake import FakeProvider

T = TypeVar("T")


def unique_node(prefix: str = "vk") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def agent_config(cp: ControlPlane, tmp_path: Path, **overrides: Any) -> Config:
    flags: dict[str, Any] = {
        "kubeconfig": str(cp.kubeconfig),
        "node_name": overrides.pop("node_name", unique_node()),
        "provider": "fake",
        "fake_state_file": str(tmp_path / "fake-cloud.json"),
        "fast_interval": 0.5,
        "reconcile_interval": 3.0,
        "health_server_address": "127.0.0.1:0",
        "node_ip": "127.0.0.1",
        "kubelet_address": "127.0.0.1",
        "kubelet_port": "0",  # any free port; the Node advertises the bound one
        "serving_cert": "self-signed",  # no CSR approval to wait for (tests/api covers it)
    }
    flags.update(overrides)
    return load_config(flags=flags, env={})


def fake_cloud(config: Config) -> FakeProvider:
    """Another view of the agent's fake cloud (same state file): the test's ledger."""
    assert config.fake_state_file
    return FakeProvider(config.node_name, state_file=Path(config.fake_state_file))


@asynccontextmanager
async def admin_client(cp: ControlPlane) -> AsyncIterator[KubeClient]:
    credentials = await resolve_credentials(kubeconfig=str(cp.kubeconfig), env={})
    async with KubeClient(credentials, qps=200, burst=200) as client:
        yield client


@asynccontextmanager
async def running_agent(
    config: Config,
    cp: ControlPlane,
    *,
    make_provider: Callable[[trio.Nursery], Awaitable[Provider]] | None = None,
    within: float = math.inf,
    keep_node: bool = False,
) -> AsyncIterator[Agent]:
    """The agent in this trio loop; afterwards it is stopped and (unless ``keep_node``) its Node
    deleted. ``make_provider`` builds the provider in the agent's nursery (else ``config``'s is
    used); the agent must be done ``within`` seconds."""
    try:
        with trio.fail_after(within):
            async with trio.open_nursery() as nursery:
                provider = None if make_provider is None else await make_provider(nursery)
                agent: Agent = await nursery.start(
                    functools.partial(run_agent, config, provider=provider)
                )
                try:
                    yield agent
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        if not keep_node:
            with trio.CancelScope(shield=True):
                async with admin_client(cp) as client:
                    await delete_node(client, config.node_name)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 30, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``within`` s."""
    with trio.move_on_after(within):
        while True:
            result = await probe()
            if result:
                return result
            await trio.sleep(0.2)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def gpu_pod(
    name: str,
    node: str,
    *,
    restart_policy: str = "Never",
    annotations: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
    image: str = "nvidia/cuda:12.4.1-base-ubuntu22.04",
) -> dict[str, Any]:
    """A pod bound to ``node`` directly (no scheduler), like the seeds' GPU example."""
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "gpu",
                    "image": image,
                    "command": ["nvidia-smi", "-L"],
                    "env": env or [],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
            "tolerations": [
                {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
    }


async def get_pod(client: KubeClient, ns: str, name: str) -> Pod:
    pod: Pod = await client.get(PODS, name, namespace=ns)
    return pod


async def pod_gone(client: KubeClient, ns: str, name: str) -> bool:
    """True once the pod no longer exists in the API (deleted with grace 0 by the agent)."""
    try:
        await client.get(PODS, name, namespace=ns)
    except NotFound:
        return True
    return False


async def pod_phase(client: KubeClient, ns: str, name: str) -> str:
    pod: Pod = await client.get(PODS, name, namespace=ns)
    return pod.status.phase


async def delete_node(client: KubeClient, name: str) -> None:
    with contextlib.suppress(KubeError):  # cleanup only
        await client.delete(NODES, name)


class AgentProcess:
    """``vk-trio run`` as a separate process, so a test can kill -9 it mid-flight."""

    def __init__(
        self,
        config: Config,
        log_path: Path,
        *extra_args: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.log_path = log_path
        self.extra_args = extra_args
        self.env = env  # None: this process's environment
        self.process: trio.Process | None = None

    def argv(self) -> list[str]:
        c = self.config
        assert c.kubeconfig and c.fake_state_file
        return [
            sys.executable,
            "-m",
            "vk_trio",
            "run",
            "--kubeconfig",
            c.kubeconfig,
            "--nodename",
            c.node_name,
            "--provider",
            "fake",
            "--fake-state-file",
            c.fake_state_file,
            "--fast-interval",
            str(c.fast_interval),
            "--reconcile-interval",
            str(c.reconcile_interval),
            "--health-server-address",
            "127.0.0.1:0",
            "--node-ip",
            "127.0.0.1",
            "--namespace",
            c.namespace,
            *self.extra_args,
        ]

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = await trio.lowlevel.open_process(
            self.argv(), stdout=log, stderr=log, cwd=str(Path(__file__).parent.parent), env=self.env
        )
        log.close()

    async def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                await self.process.wait()
            if self.process.returncode is None:
                await self.kill9()
        return self.process.returncode or 0
