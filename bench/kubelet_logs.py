"""The kubelet API under load: ``kubectl logs -f`` of 100 pods at once, and the memory that 1,000
finished pods' retained logs cost.

1. Follow: 100 running pods (fake cloud at zero latency, in the agent's own process,
   bench/agent_process.py), then 100 followed log requests at once through the real API server
   (``GET .../pods/<p>/log?follow=true``, what ``kubectl logs -f`` sends), plus one real
   ``kubectl logs -f``. Figures: time from each request to its first line (p50/p99/max), the
   agent's CPU seconds and RSS while the 100 streams are open.
   Target: first line <= 1 s after the API server asks.
2. Retention: 1,000 pods that print ``LINES`` lines of ``WIDTH`` bytes and finish, with the
   default retention (1 MiB per attempt, 256 MiB in all) and ``--state-dir`` (tails on disk),
   against the same run with ``--log-retention-bytes 0``. Figure: the agent's RSS difference
   once all 1,000 are finished and their instances deleted, and the bytes on disk.
   Target: <= 20 MB RSS for 1,000 retained tails beyond the spill to disk.

Run: ``python -m bench.kubelet_logs [--state-dir CP_DIR]`` (results in
bench/results/kubelet_logs.json).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import trio
from prometheus_client.parser import text_string_to_metric_families

from bench.agent_process import memory_mb
from bench.lifecycle import AgentProcess, PhaseWatch, until
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane, kubectl_path
from vk_trio.kube.auth import resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import watch_resource

TARGET_FIRST_LINE_S = 1.0
TARGET_RETAINED_MB = 20.0
FOLLOWERS = 100
FINISHED = 1000
LINES = 200
WIDTH = 100


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pod_body(name: str, node: str, *, lines: int, seconds: str, policy: str) -> dict[str, Any]:
    text = "\n".join(f"{name} line {i:05d} " + "x" * (WIDTH - 30) for i in range(lines))
    return {
        "metadata": {
            "name": name,
            "annotations": {"fake.vk-trio.io/logs": text, "fake.vk-trio.io/run-seconds": seconds},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": policy,
            "containers": [{"name": "c", "image": "bench/logs:1"}],
        },
    }


async def create_pods(client: KubeClient, ns: str, bodies: list[dict[str, Any]]) -> None:
    limiter = trio.CapacityLimiter(32)

    async def one(body: dict[str, Any]) -> None:
        async with limiter:
            await client.create(PODS, body, namespace=ns)

    async with trio.open_nursery() as nursery:
        for body in bodies:
            nursery.start_soon(one, body)


def agent_flags(cp: ControlPlane, node: str, **extra: Any) -> dict[str, Any]:
    return {
        "kubeconfig": str(cp.kubeconfig),
        "node_name": node,
        "provider": "fake",
        "fast_interval": 1.0,
        "reconcile_interval": 5.0,
        "health_server_address": "127.0.0.1:0",
        "node_ip": "127.0.0.1",
        "kubelet_address": "127.0.0.1",
        "kubelet_port": "0",
        "serving_cert": "self-signed",
        **extra,
    }


async def watched(client: KubeClient, ns: str, nursery: trio.Nursery) -> PhaseWatch:
    watch = PhaseWatch()
    await nursery.start(
        lambda task_status: watch_resource(
            client, PODS, watch.handle, namespace=ns, task_status=task_status
        )
    )
    return watch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def agent_first_lines(health: int) -> dict[str, Any]:
    """The agent's own view: its histogram of request → first line sent."""
    async with httpx2.AsyncClient(trust_env=False) as http:
        text = (await http.get(f"http://127.0.0.1:{health}/metrics")).text
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "vk_trio_kubelet_api_first_log_line_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets[float(sample.labels["le"])] = sample.value
    total = buckets.get(float("inf"), 0.0)
    within = next((buckets[le] for le in sorted(buckets) if le >= TARGET_FIRST_LINE_S), 0.0)
    slowest = min((le for le in sorted(buckets) if buckets[le] >= total), default=None)
    return {
        "agent_first_lines": int(total),
        "agent_first_line_within_1s": int(within),
        "agent_first_line_max_bucket_s": slowest,
    }


async def follow(cp: ControlPlane, ns: str, node: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vk-bench-logs-"))
    health = free_port()
    flags = agent_flags(cp, node, health_server_address=f"127.0.0.1:{health}")
    agent = AgentProcess(flags, work)
    credentials = await resolve_credentials(kubeconfig=str(cp.kubeconfig), env={})
    context = ssl.create_default_context(cafile=str(cp.ca_pem))
    context.load_cert_chain(cp.admin_cert, cp.admin_key)
    await agent.start()
    try:
        async with KubeClient(credentials, qps=500, burst=500) as client, trio.open_nursery() as n:
            watch = await watched(client, ns, n)
            names = [f"follow-{i:03d}" for i in range(FOLLOWERS)]
            bodies = [pod_body(x, node, lines=20, seconds="inf", policy="Always") for x in names]
            await create_pods(client, ns, bodies)
            await until(lambda: watch.count("Running") >= FOLLOWERS, watch, limit=180)
            assert agent.proc is not None
            cpu_before = cpu_seconds(agent.proc.pid)
            first: dict[str, float] = {}
            opened = trio.Event()
            limits = httpx2.Limits(max_connections=FOLLOWERS + 10)
            async with httpx2.AsyncClient(
                base_url=cp.server, verify=context, limits=limits, timeout=60, trust_env=False
            ) as http:

                async def one(name: str) -> None:
                    path = f"/api/v1/namespaces/{ns}/pods/{name}/log"
                    asked = time.monotonic()
                    async with http.stream("GET", path, params={"follow": "true"}) as response:
                        async for _line in response.aiter_lines():
                            first[name] = time.monotonic() - asked
                            break
                        if len(first) == FOLLOWERS:
                            opened.set()
                        await opened.wait()
                        await trio.sleep(2.0)  # all 100 streams open together

                async with trio.open_nursery() as streams:
                    for name in names:
                        streams.start_soon(one, name)
                    with trio.fail_after(120):
                        await opened.wait()
                    open_memory = agent.memory()
                    agent_view = await agent_first_lines(health)
                    kubectl_first = await real_kubectl_first_line(cp, ns, names[0])
            cpu = cpu_seconds(agent.proc.pid) - cpu_before
            n.cancel_scope.cancel()
        latencies = sorted(first.values())
        return {
            "followers": FOLLOWERS,
            "first_line_p50_s": round(statistics.median(latencies), 3),
            "first_line_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 3),
            "first_line_max_s": round(latencies[-1], 3),
            "kubectl_logs_f_first_line_s": kubectl_first,
            **agent_view,
            "agent_cpu_s_during_follow": round(cpu, 2),
            "agent_rss_mb_with_100_streams": open_memory["rss_mb"],
            "target_first_line_s": TARGET_FIRST_LINE_S,
        }
    finally:
        await agent.stop()


async def real_kubectl_first_line(cp: ControlPlane, ns: str, name: str) -> float:
    argv = [str(kubectl_path()), f"--kubeconfig={cp.kubeconfig}", "-n", ns, "logs", "-f", name]
    started = time.monotonic()
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        with trio.fail_after(30):
            await process.stdout.receive_some(1)
        return round(time.monotonic() - started, 3)
    finally:
        process.kill()
        await process.wait()
        await process.stdout.aclose()  # type: ignore[union-attr]


async def retention(cp: ControlPlane, ns: str, node: str, *, keep: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vk-bench-retain-"))
    extra: dict[str, Any] = {"state_dir": str(work / "state")}
    if not keep:
        extra["log_retention_bytes"] = "0"
    agent = AgentProcess(agent_flags(cp, node, **extra), work)
    credentials = await resolve_credentials(kubeconfig=str(cp.kubeconfig), env={})
    await agent.start()
    try:
        async with KubeClient(credentials, qps=500, burst=500) as client, trio.open_nursery() as n:
            watch = await watched(client, ns, n)
            names = [f"done-{i:04d}" for i in range(FINISHED)]
            bodies = [pod_body(x, node, lines=LINES, seconds="1", policy="Never") for x in names]
            started = time.monotonic()
            await create_pods(client, ns, bodies)
            await until(lambda: watch.count("Succeeded") >= FINISHED, watch, limit=600)
            with trio.fail_after(300):
                while (await agent.report())["live_instances"]:  # noqa: ASYNC110 (another process)
                    await trio.sleep(1.0)
            elapsed = time.monotonic() - started
            memory = agent.memory()
            n.cancel_scope.cancel()
        on_disk = sum(f.stat().st_size for f in (work / "state").rglob("*.log"))
        return {
            "rss_mb": memory["rss_mb"],
            "disk_mb": round(on_disk / 1e6, 1),
            "run_s": round(elapsed, 1),
        }
    finally:
        await agent.stop()


async def in_namespace(cp: ControlPlane, ns: str) -> None:
    await trio.to_thread.run_sync(lambda: cp.kubectl("create", "namespace", ns))


async def drop_namespace(cp: ControlPlane, ns: str) -> None:
    await trio.to_thread.run_sync(lambda: cp.kubectl("delete", "namespace", ns, "--wait=false"))


async def run(cp: ControlPlane, *, retain: bool = True) -> dict[str, Any]:
    stamp = int(time.time())
    result: dict[str, Any] = {}
    ns = f"bench-logs-{stamp}"
    await in_namespace(cp, ns)
    try:
        result["follow"] = await follow(cp, ns, f"bench-follow-{stamp}")
    finally:
        await drop_namespace(cp, ns)
    if retain:
        rows = {}
        for keep in (False, True):
            name = f"bench-retain-{stamp}-{int(keep)}"
            await in_namespace(cp, name)
            try:
                rows[keep] = await retention(cp, name, name, keep=keep)
            finally:
                await drop_namespace(cp, name)
        result["retention"] = {
            "finished_pods": FINISHED,
            "log_bytes_per_pod": LINES * WIDTH,
            "rss_mb_without_retention": rows[False]["rss_mb"],
            "rss_mb_with_retention": rows[True]["rss_mb"],
            "retained_rss_mb": round(rows[True]["rss_mb"] - rows[False]["rss_mb"], 1),
            "retained_on_disk_mb": rows[True]["disk_mb"],
            "run_s": [rows[False]["run_s"], rows[True]["run_s"]],
            "target_retained_rss_mb": TARGET_RETAINED_MB,
        }
    result["this_process"] = memory_mb()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vk-trio kubelet API benchmark")
    parser.add_argument("--state-dir", type=Path, default=None, help="reuse a control plane")
    parser.add_argument("--out", type=Path, default=Path("bench/results/kubelet_logs.json"))
    parser.add_argument("--follow-only", action="store_true", help="skip the retention part")
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)
    try:
        result = trio.run(lambda: run(cp, retain=not args.follow_only))
    finally:
        if args.state_dir is None:
            launcher.down(state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
