"""The node agent under a burst: 1,000 pods to Running and deleted, RSS at 1,000 and 10,000 pods.

Why: a virtual node fronts a whole cloud, so it must absorb a Job burst without making the API
server or the provider suffer, and stay small while holding many pods. This runs the agent
in a process of its own (bench/agent_process.py, so its memory is its own) against the local
control plane (tests/controlplane), with the in-memory fake provider at zero latency (instant
boot, unlimited stock) inside it, pods created with spec.nodeName set so the scheduler is not
in the loop.

Figures (written to bench/results/lifecycle.json):
* ``to_running_s``: first pod POSTed → all 1,000 Running.           TARGET <= 10 s
* ``create_latency_p50_ms`` / ``p99``: pod POST sent → provider create call (per pod).
* ``steady_provider_calls_per_interval``: provider calls in one quiet interval. TARGET == 1
* ``delete_s``: DELETE of all 1,000 → all gone from the API.         TARGET <= 10 s
* ``rss_mb_at_1000`` / ``rss_mb_at_10000``: resident memory of the agent's process with that
  many managed pods (and ``peak_rss_mb_at_10000``, its high-water mark). TARGET <= 150 MB at 10,000
Each run states the API client QPS/burst it used (``--qps``/``--burst``).

``--clouds 2`` runs the node in front of two zero-latency clouds through the Router, the first
with room for half the pods (equal prices: it is filled first, then its offers vanish and the
rest go to the second), and adds ``list_calls_per_cloud_per_interval`` (TARGET: 1 each) and
``instances_per_cloud``. TARGET: ``to_running_s`` within 20% of the single-cloud run's.

Run: ``python -m bench.lifecycle [--pods 1000] [--big 10000] [--qps 50 --burst 100]
[--clouds 2]``
(``--big 0`` skips the 10,000-pod memory figure, which takes a few minutes on two cores.)
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from bench.agent_process import memory_mb
from tests.agent_harness import admin_client
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import Changed, Synced, watch_resource

TARGET_TO_RUNNING_S = 10.0
TARGET_DELETE_S = 10.0
TARGET_RSS_MB_AT_10000 = 150.0
TARGET_STEADY_CALLS = 1
TARGET_TWO_CLOUD_RATIO = 1.2  # two clouds: within 20% of one cloud's time to Running
REPO = Path(__file__).resolve().parent.parent


class AgentProcess:
    """bench/agent_process.py as a child process: its reports, its memory, its end."""

    def __init__(self, flags: dict[str, Any], work: Path) -> None:
        self.flags = flags
        self.out = work / "agent-report.json"
        self.proc: trio.Process | None = None

    async def start(self) -> dict[str, Any]:
        """Start the agent; returns its first report, written once its node is Ready."""
        self.proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "bench.agent_process", json.dumps(self.flags), str(self.out)],
            cwd=REPO,
        )
        return await self._read(limit=120)

    async def report(self) -> dict[str, Any]:
        """A fresh report (SIGUSR1, then wait for the file)."""
        assert self.proc is not None
        self.out.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        return await self._read(limit=60)

    def memory(self) -> dict[str, float]:
        assert self.proc is not None
        return memory_mb(self.proc.pid)

    async def stop(self) -> None:
        """SIGTERM (the agent's graceful stop), SIGKILL if it is not gone within 30 s."""
        if self.proc is None:
            return
        with trio.CancelScope(shield=True):
            self.proc.terminate()
            with trio.move_on_after(30):
                await self.proc.wait()
            if self.proc.poll() is None:
                self.proc.kill()
                await self.proc.wait()

    async def _read(self, *, limit: float) -> dict[str, Any]:
        assert self.proc is not None
        with trio.fail_after(limit):
            while not self.out.exists():
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the agent exited with {self.proc.returncode}")
                await trio.sleep(0.05)
        body: dict[str, Any] = json.loads(self.out.read_text())
        return body


def pod_body(name: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"bench": "lifecycle"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "c",
                    "image": "bench/instant:1",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }


class PhaseWatch:
    """Pod phases in the namespace, kept by a watch (polling 1,000-pod lists would load the
    API server more than the agent does and distort the figures)."""

    def __init__(self) -> None:
        self.phases: dict[str, str] = {}
        self.changed = trio.Event()

    async def handle(self, event: Synced[Pod] | Changed[Pod]) -> None:
        if isinstance(event, Synced):
            self.phases = {p.metadata.uid: p.status.phase for p in event.items}
        elif event.type == "DELETED":
            self.phases.pop(event.object.metadata.uid, None)
        else:
            self.phases[event.object.metadata.uid] = event.object.status.phase
        self.changed.set()
        self.changed = trio.Event()

    def count(self, phase: str) -> int:
        return sum(1 for p in self.phases.values() if p == phase)


async def until(probe: Callable[[], bool], watch: PhaseWatch, *, limit: float) -> float:
    start = time.monotonic()
    with trio.fail_after(limit):
        while not probe():
            await watch.changed.wait()
    return time.monotonic() - start


async def create_pods(
    client: KubeClient,
    ns: str,
    node: str,
    names: list[str],
    *,
    body: Callable[[str, str], dict[str, Any]] = pod_body,
) -> dict[str, float]:
    """POST the pods (32 at a time); returns pod uid → when its POST was sent. (Not when it was
    answered: the agent may see the pod through its watch, and rent, before the answer reaches
    this client on a loaded machine.)"""
    created: dict[str, float] = {}
    limiter = trio.CapacityLimiter(32)

    async def one(name: str) -> None:
        async with limiter:
            sent = time.monotonic()
            pod = await client.create(PODS, body(name, node), namespace=ns)
            created[pod.metadata.uid] = sent

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(one, name)
    return created


async def run(
    cp: ControlPlane, *, pods: int, big: int, qps: float, burst: int, clouds: int = 1
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vk-bench-"))
    node = f"bench-{int(time.time())}"  # a fresh node: no pod of an earlier run can count
    reconcile_interval = 5.0
    agent = AgentProcess(
        {
            "kubeconfig": str(cp.kubeconfig),
            "node_name": node,
            "provider": "fake",
            "kube_qps": qps,
            "kube_burst": burst,
            "fast_interval": 1.0,
            "reconcile_interval": reconcile_interval,
            "health_server_address": "127.0.0.1:0",
            "node_ip": "127.0.0.1",
            # room for every pod of the run: beyond the node's capacity the agent would reject
            # them, as a kubelet does (pods/admission.py)
            "max_pods": max(pods, big) + 10,
            "gpus": max(pods, big),
            "bench_clouds": clouds,
            "bench_capacity": pods // 2,
        },
        work,
    )
    ns = f"bench-{int(time.time())}"
    result: dict[str, Any] = {
        "benchmark": "lifecycle",
        "pods": pods,
        "clouds": clouds,
        "qps": qps,
        "burst": burst,
    }
    async with admin_client(cp) as client:
        cp.kubectl("create", "namespace", ns)
        try:
            await agent.start()
            async with trio.open_nursery() as nursery:
                watch = PhaseWatch()
                await nursery.start(
                    lambda task_status: watch_resource(
                        client, PODS, watch.handle, namespace=ns, task_status=task_status
                    )
                )
                await measure(agent, client, watch, result, ns=ns, node=node, pods=pods, big=big)
                nursery.cancel_scope.cancel()
        finally:
            await agent.stop()
            cp.kubectl("delete", "namespace", ns, "--wait=false")
            await client.request("DELETE", f"/api/v1/nodes/{node}")
    result["targets"] = {
        "to_running_s": TARGET_TO_RUNNING_S,
        "delete_s": TARGET_DELETE_S,
        "rss_mb_at_10000": TARGET_RSS_MB_AT_10000,
        "steady_provider_calls_per_interval": TARGET_STEADY_CALLS * clouds,
    }
    if clouds > 1:
        result["targets"]["list_calls_per_cloud_per_interval"] = 1
        result["targets"]["to_running_s_vs_one_cloud"] = TARGET_TWO_CLOUD_RATIO
    result["python"] = sys.version.split()[0]
    return result


async def measure(
    agent: AgentProcess,
    client: KubeClient,
    watch: PhaseWatch,
    result: dict[str, Any],
    *,
    ns: str,
    node: str,
    pods: int,
    big: int,
) -> None:
    reconcile_interval = float(agent.flags["reconcile_interval"])
    fast_interval = float(agent.flags["fast_interval"])
    result["rss_mb_idle"] = agent.memory()["rss_mb"]
    names = [f"p{i:05d}" for i in range(pods)]
    start = time.monotonic()
    created = await create_pods(client, ns, node, names)
    result["create_s"] = round(time.monotonic() - start, 2)

    await until(lambda: watch.count("Running") == pods, watch, limit=600)
    result["to_running_s"] = round(time.monotonic() - start, 2)
    seen = await agent.report()
    result["agent_requests_to_running"] = seen["agent_requests"]
    create_at: dict[str, float] = seen["create_at"]
    latencies = sorted(
        (create_at[uid] - t) * 1000 for uid, t in created.items() if uid in create_at
    )
    result["create_latency_p50_ms"] = round(statistics.median(latencies), 1)
    result["create_latency_p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1], 1)
    result["rss_mb_at_1000"] = agent.memory()["rss_mb"]
    result["instances_per_cloud"] = seen["instances_per_cloud"]
    await trio.sleep(2 * reconcile_interval)  # settle into the steady interval
    before = await agent.report()
    await trio.sleep(reconcile_interval)
    after = await agent.report()
    calls = after["provider_calls"] - before["provider_calls"]
    result["steady_provider_calls_per_interval"] = calls
    result["list_calls_per_cloud_per_interval"] = {
        cloud: after["list_calls"][cloud] - count for cloud, count in before["list_calls"].items()
    }

    start = time.monotonic()
    await client.request(
        "DELETE", PODS.path(namespace=ns), params={"labelSelector": "bench=lifecycle"}
    )
    await until(lambda: not watch.phases, watch, limit=600)
    result["delete_s"] = round(time.monotonic() - start, 2)
    result["live_instances_when_pods_gone"] = (await agent.report())["live_instances"]
    await trio.sleep(2 * fast_interval)
    result["live_instances_two_fast_intervals_later"] = (await agent.report())["live_instances"]
    if big:
        more = [f"q{i:05d}" for i in range(big)]
        await create_pods(client, ns, node, more)
        waited = await until(lambda: watch.count("Running") == big, watch, limit=1800)
        result["to_running_10000_s"] = round(waited, 1)
        await trio.sleep(2 * reconcile_interval)  # a steady interval or two with all of them
        memory = agent.memory()
        result["rss_mb_at_10000"] = memory["rss_mb"]
        result["peak_rss_mb_at_10000"] = memory["peak_rss_mb"]
        await client.request(
            "DELETE", PODS.path(namespace=ns), params={"labelSelector": "bench=lifecycle"}
        )
        await until(lambda: not watch.phases, watch, limit=1800)
        result["live_instances_after_10000_deleted"] = (await agent.report())["live_instances"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vk-trio lifecycle benchmark")
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--big", type=int, default=10000)
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--clouds", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="reuse a control plane started with python -m tests.controlplane up",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)
    try:
        result = trio.run(
            lambda: run(
                cp, pods=args.pods, big=args.big, qps=args.qps, burst=args.burst, clouds=args.clouds
            )
        )
    finally:
        if args.state_dir is None:
            launcher.down(state)
    name = "lifecycle.json" if args.clouds == 1 else "lifecycle-2clouds.json"
    out = args.out or Path("bench/results") / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
