"""The check every shipped form of the agent passes: Node Ready, a pod Running, SIGTERM → exit 0.

The agent is an already started process (the .pyz, or the image's entrypoint in a chroot); the
test only sees it from outside, through the API server, its health port and its exit status.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx2
import trio

from tests.agent_harness import admin_client, delete_node, eventually, gpu_pod
from tests.controlplane.launcher import ControlPlane
from vk_trio.errors import NotFound
from vk_trio.kube.models import Node, Pod
from vk_trio.kube.resources import NODES, PODS

FAST = {"fake.vk-trio.io/boot-seconds": "0.5", "fake.vk-trio.io/start-seconds": "0.5"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path) -> str:
    """The end of the agent's log, for an assertion message."""
    return path.read_text(errors="replace")[-4000:]


def agent_flags(*, node: str, port: int, kubeconfig: str, state_file: str) -> list[str]:
    """``run`` and its flags: the fake cloud, a loopback health port, fast status polls."""
    return [
        "run",
        "--provider",
        "fake",
        "--fake-state-file",
        state_file,
        "--kubeconfig",
        kubeconfig,
        "--nodename",
        node,
        "--health-server-address",
        f"127.0.0.1:{port}",
        "--node-ip",
        "127.0.0.1",
        "--fast-interval",
        "0.5",
        # the kubelet API too (its keys and certificates are made in pure Python: this proves
        # the packaged build can), on any free loopback port
        "--kubelet-address",
        "127.0.0.1",
        "--kubelet-port",
        "0",
        "--serving-cert",
        "self-signed",
    ]


async def check_agent_runs_a_pod_and_stops(
    process: trio.Process,
    *,
    controlplane: ControlPlane,
    node: str,
    port: int,
    namespace: str,
    log_path: Path,
) -> None:
    """Node Ready (and /readyz 200), a bound pod Running, then SIGTERM exits 0.

    The process is killed if it is still running at the end; its Node is deleted.
    """
    try:
        async with admin_client(controlplane) as client:
            try:

                async def ready() -> bool:
                    assert process.poll() is None, log_tail(log_path)
                    try:
                        current: Node = await client.get(NODES, node)
                    except NotFound:
                        return False
                    return any(
                        c.type == "Ready" and c.status == "True" for c in current.status.conditions
                    )

                await eventually(ready, within=60, what="node Ready")
                async with httpx2.AsyncClient() as http:
                    readyz = await http.get(f"http://127.0.0.1:{port}/readyz")
                assert readyz.status_code == 200, readyz.text

                pod = gpu_pod("shipped", node, annotations=FAST)
                await client.create(PODS, pod, namespace=namespace)

                async def running() -> bool:
                    current: Pod = await client.get(PODS, "shipped", namespace=namespace)
                    return current.status.phase == "Running"

                await eventually(running, within=60, what="pod Running")

                process.send_signal(signal.SIGTERM)
                with trio.fail_after(40):
                    code = await process.wait()
                assert code == 0, log_tail(log_path)
            finally:
                with trio.CancelScope(shield=True):
                    await delete_node(client, node)
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
