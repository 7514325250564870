"""The node agent under a burst: 1,000 pods to Running and deleted, RSS at 1,000 and 10,000 pods.

Why: a virtual node fronts a whole cloud, so it must absorb a Job burst without making the API
server or the provider suffer, and stay small while holding many pods. This runs the agent
in-process against the local control plane (tests/controlplane) with the in-memory fake
provider at zero latency (instant boot, unlimited stock), pods created with spec.nodeName set
so the scheduler is not in the loop.

Figures (written to bench/results/lifecycle.json):
* ``to_running_s``: first pod POSTed → all 1,000 Running.           TARGET <= 10 s
* ``create_latency_p50_ms`` / ``p99``: pod created → provider create call (per pod).
* ``steady_provider_calls_per_interval``: provider calls in one quiet interval. TARGET == 1
* ``delete_s``: DELETE of all 1,000 → all gone from the API.         TARGET <= 10 s
* ``rss_mb_at_1000`` / ``rss_mb_at_10000``: resident memory of the process (agent + this
  script's small client) with that many managed pods.               TARGET <= 150 MB at 10,000
Each run states the API client QPS/burst it used (``--qps``/``--burst``).

Run: ``python -m bench.lifecycle [--pods 1000] [--big 10000] [--qps 50 --burst 100]``
(``--big 0`` skips the 10,000-pod memory figure, which takes a few minutes on two cores.)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from tests.agent_harness import admin_client, agent_config
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import Changed, Synced, watch_resource
from vk_trio.providers.base import Instance, InstanceSpec, Offer, Provider
from vk_trio.providers.fake import CatalogEntry, FakeProvider, Workload

TARGET_TO_RUNNING_S = 10.0
TARGET_DELETE_S = 10.0
TARGET_RSS_MB_AT_10000 = 150.0
TARGET_STEADY_CALLS = 1


class Recording:
    """Wraps a provider to time its create calls and count every call."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.create_at: dict[str, float] = {}
        self.calls = 0

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def check(self, spec: InstanceSpec) -> None:
        self.inner.check(spec)

    async def offers(self, need: Any) -> list[Offer]:
        self.calls += 1
        return await self.inner.offers(need)

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.calls += 1
        self.create_at.setdefault(spec.pod_uid, time.monotonic())
        return await self.inner.create(spec, offer)

    async def list(self) -> list[Instance]:
        self.calls += 1
        return await self.inner.list()

    async def delete(self, instance_id: str) -> None:
        self.calls += 1
        await self.inner.delete(instance_id)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


async def create_pods(client: KubeClient, ns: str, node: str, names: list[str]) -> dict[str, float]:
    created: dict[str, float] = {}
    limiter = trio.CapacityLimiter(32)

    async def one(name: str) -> None:
        async with limiter:
            pod = await client.create(PODS, pod_body(name, node), namespace=ns)
            created[pod.metadata.uid] = time.monotonic()

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(one, name)
    return created


async def run(cp: ControlPlane, *, pods: int, big: int, qps: float, burst: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vk-bench-"))
    node = f"bench-{int(time.time())}"  # a fresh node: no pod of an earlier run can count
    fake = FakeProvider(
        node,
        catalog=[
            CatalogEntry(
                offer_id="bench",
                gpu_type="RTX 4090",
                gpu_memory_gb=24,
                price_per_gpu_hour=0.4,
                location="bench",
                capacity=10**6,
            )
        ],
        default_workload=Workload(boot_seconds=0, start_seconds=0),
    )
    provider = Recording(fake)
    config = agent_config(
        cp,
        work,
        node_name=node,
        kube_qps=qps,
        kube_burst=burst,
        fast_interval=1.0,
        reconcile_interval=5.0,
    )
    ns = f"bench-{int(time.time())}"
    result: dict[str, Any] = {"benchmark": "lifecycle", "pods": pods, "qps": qps, "burst": burst}
    async with admin_client(cp) as client:
        cp.kubectl("create", "namespace", ns)
        async with trio.open_nursery() as nursery:
            from vk_trio.daemon import run_agent

            agent = await nursery.start(
                lambda task_status: run_agent(config, provider=provider, task_status=task_status)
            )
            watch = PhaseWatch()
            await nursery.start(
                lambda task_status: watch_resource(
                    client, PODS, watch.handle, namespace=ns, task_status=task_status
                )
            )
            rss_idle = rss_mb()
            names = [f"p{i:05d}" for i in range(pods)]
            start = time.monotonic()
            created = await create_pods(client, ns, config.node_name, names)
            result["create_s"] = round(time.monotonic() - start, 2)

            await until(lambda: watch.count("Running") == pods, watch, limit=600)
            result["to_running_s"] = round(time.monotonic() - start, 2)
            result["agent_requests_to_running"] = dict(agent.reconciler.client.sent)
            latencies = sorted(
                (provider.create_at[uid] - t) * 1000
                for uid, t in created.items()
                if uid in provider.create_at
            )
            result["create_latency_p50_ms"] = round(statistics.median(latencies), 1)
            result["create_latency_p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1], 1)
            result["rss_mb_idle"] = round(rss_idle, 1)
            result["rss_mb_at_1000"] = round(rss_mb(), 1)
            await trio.sleep(2 * config.reconcile_interval)  # settle into the steady interval
            before = provider.calls
            await trio.sleep(config.reconcile_interval)
            result["steady_provider_calls_per_interval"] = provider.calls - before
            start = time.monotonic()
            await client.request(
                "DELETE", PODS.path(namespace=ns), params={"labelSelector": "bench=lifecycle"}
            )

            await until(lambda: not watch.phases, watch, limit=600)
            result["delete_s"] = round(time.monotonic() - start, 2)
            result["live_instances_when_pods_gone"] = len(fake.live_instances())
            await trio.sleep(2 * config.fast_interval)
            result["live_instances_two_fast_intervals_later"] = len(fake.live_instances())
            if big:
                more = [f"q{i:05d}" for i in range(big)]
                await create_pods(client, ns, config.node_name, more)

                waited = await until(lambda: watch.count("Running") == big, watch, limit=1800)
                result["to_running_10000_s"] = round(waited, 1)
                result["rss_mb_at_10000"] = round(rss_mb(), 1)
                await client.request(
                    "DELETE", PODS.path(namespace=ns), params={"labelSelector": "bench=lifecycle"}
                )
            nursery.cancel_scope.cancel()
        cp.kubectl("delete", "namespace", ns, "--wait=false")
        await client.request("DELETE", f"/api/v1/nodes/{node}")
    result["targets"] = {
        "to_running_s": TARGET_TO_RUNNING_S,
        "delete_s": TARGET_DELETE_S,
        "rss_mb_at_10000": TARGET_RSS_MB_AT_10000,
        "steady_provider_calls_per_interval": TARGET_STEADY_CALLS,
    }
    result["python"] = sys.version.split()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vk-trio lifecycle benchmark")
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--big", type=int, default=10000)
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="reuse a control plane started with python -m tests.controlplane up",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/lifecycle.json"))
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)
    try:
        result = trio.run(
            lambda: run(cp, pods=args.pods, big=args.big, qps=args.qps, burst=args.burst)
        )
    finally:
        if args.state_dir is None:
            launcher.down(state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
