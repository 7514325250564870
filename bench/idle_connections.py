"""A flood of idle connections must not take the node down: /healthz answers and pods still run.

The agent runs in its own process (bench/agent_process.py, fake cloud at zero latency). The
benchmark holds ``IDLE`` connections to its health port and ``IDLE`` more to its kubelet API
port that never send a byte, reopening each one as soon as the agent closes it (a client that
keeps coming back), for the whole measurement. Meanwhile it probes /healthz twice a second and
creates ``PODS`` pods. Figures: /healthz latency (p50, max) and failures under the flood, time
until all pods are Running with and without the flood, connections the agent closed, its RSS.

Targets: every /healthz probe answers (within 1 s), and the pods run within twice the time they
take without the flood.

Run: ``python -m bench.idle_connections [--state-dir CP_DIR]``
(results in bench/results/idle_connections.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import trio

from bench.lifecycle import AgentProcess, PhaseWatch, until
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.auth import resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.resources import NODES, PODS
from vk_trio.kube.watch import watch_resource

IDLE = 2000
PODS_COUNT = 50
FLOOD_SECONDS = 30.0
TARGET_PROBE_S = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def hold_idle(port: int, stop: trio.Event, counter: dict[str, int]) -> None:
    """One idle client: connect, send nothing, reconnect when closed, until ``stop``."""
    while not stop.is_set():
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            counter["connect_errors"] += 1
            await trio.sleep(0.1)
            continue
        counter["connections"] += 1
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(_closed_by_server, stream, nursery.cancel_scope)
            nursery.start_soon(_until, stop, nursery.cancel_scope)


async def _closed_by_server(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
    with contextlib.suppress(trio.BrokenResourceError, OSError):
        await stream.receive_some(1)
    scope.cancel()


async def _until(stop: trio.Event, scope: trio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


async def probe(port: int, stop: trio.Event, latencies: list[float], failures: list[str]) -> None:
    async with httpx2.AsyncClient(timeout=5.0, trust_env=False) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
                if answer.status_code == 200:
                    latencies.append(time.monotonic() - started)
                else:
                    failures.append(str(answer.status_code))
            except httpx2.HTTPError as exc:
                failures.append(type(exc).__name__)
            await trio.sleep(0.5)


def pod_body(name: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "containers": [{"name": "c", "image": "bench/idle:1"}],
        },
    }


async def one_run(cp: ControlPlane, *, flood: bool) -> dict[str, Any]:
    stamp = f"{int(time.time())}-{int(flood)}"
    node, ns = f"bench-idle-{stamp}", f"bench-idle-{stamp}"
    health = free_port()
    work = Path(tempfile.mkdtemp(prefix="vk-bench-idle-"))
    agent = AgentProcess(
        {
            "kubeconfig": str(cp.kubeconfig),
            "node_name": node,
            "provider": "fake",
            "fast_interval": 1.0,
            "reconcile_interval": 5.0,
            "health_server_address": f"127.0.0.1:{health}",
            "node_ip": "127.0.0.1",
            "kubelet_address": "127.0.0.1",
            "kubelet_port": "0",
            "serving_cert": "self-signed",
        },
        work,
    )
    await trio.to_thread.run_sync(lambda: cp.kubectl("create", "namespace", ns))
    credentials = await resolve_credentials(kubeconfig=str(cp.kubeconfig), env={})
    await agent.start()
    counter = {"connections": 0, "connect_errors": 0}
    latencies: list[float] = []
    failures: list[str] = []
    try:
        async with KubeClient(credentials, qps=200, burst=200) as client:
            kubelet = 0
            with trio.fail_after(30):
                while not kubelet:
                    found = await client.get(NODES, node)
                    kubelet = found.status.daemon_endpoints.kubelet_endpoint.port
                    await trio.sleep(0.2)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                watch = PhaseWatch()
                await nursery.start(
                    lambda task_status: watch_resource(
                        client, PODS, watch.handle, namespace=ns, task_status=task_status
                    )
                )
                nursery.start_soon(probe, health, stop, latencies, failures)
                if flood:
                    for index in range(IDLE * 2):
                        port = health if index % 2 == 0 else kubelet
                        nursery.start_soon(hold_idle, port, stop, counter)
                    await trio.sleep(3.0)  # the flood is in place
                started = time.monotonic()
                names = [f"p-{i:03d}" for i in range(PODS_COUNT)]
                bodies = {n: pod_body(n, node) for n in names}
                await create_pods_bodies(client, ns, list(bodies.values()))
                await until(lambda: watch.count("Running") >= PODS_COUNT, watch, limit=300)
                to_running = time.monotonic() - started
                await trio.sleep(max(0.0, FLOOD_SECONDS - to_running))
                memory = agent.memory()
                stop.set()
                nursery.cancel_scope.cancel()
    finally:
        await agent.stop()
        await trio.to_thread.run_sync(lambda: cp.kubectl("delete", "namespace", ns, "--wait=false"))
    ordered = sorted(latencies)
    return {
        "idle_connections_held": IDLE * 2 if flood else 0,
        "connections_opened": counter["connections"],
        "connect_errors": counter["connect_errors"],
        "healthz_probes": len(latencies) + len(failures),
        "healthz_failures": len(failures),
        "healthz_p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "healthz_max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
        "pods_to_running_s": round(to_running, 2),
        "agent_rss_mb": memory["rss_mb"],
    }


async def create_pods_bodies(client: KubeClient, ns: str, bodies: list[dict[str, Any]]) -> None:
    limiter = trio.CapacityLimiter(16)

    async def one(body: dict[str, Any]) -> None:
        async with limiter:
            await client.create(PODS, body, namespace=ns)

    async with trio.open_nursery() as nursery:
        for body in bodies:
            nursery.start_soon(one, body)


async def run(cp: ControlPlane) -> dict[str, Any]:
    quiet = await one_run(cp, flood=False)
    flooded = await one_run(cp, flood=True)
    return {
        "quiet": quiet,
        "flood": flooded,
        "target_probe_s": TARGET_PROBE_S,
        "pods_slowdown": round(flooded["pods_to_running_s"] / quiet["pods_to_running_s"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="idle connection flood benchmark")
    parser.add_argument("--state-dir", type=Path, default=None, help="reuse a control plane")
    parser.add_argument("--out", type=Path, default=Path("bench/results/idle_connections.json"))
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)
    try:
        result = trio.run(run, cp)
    finally:
        if args.state_dir is None:
            launcher.down(state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
