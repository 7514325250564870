"""Real clouds are slow: a burst of pods through a simulated cloud with its response times and
rate limits, and how close the agent comes to the pace the cloud's limits allow.

Why: against an instant cloud, an agent that does one pod at a time looks fast. Here the cloud
answers a RunPod create in 1-3 s and a list in 0.3 s (a Vast.ai search in about 1 s, a create in
about 2 s; vk_trio/sim/*/app.py ``REALISTIC_LATENCY``) and enforces its rate limits, so the
agent must keep enough creates in flight that the cloud, not the agent, sets the pace.

The simulated cloud runs in this process (its clock is the truth for when a create arrived and
when an instance was ready); the agent runs in a process of its own (bench/agent_process.py, as
``vk-trio run --provider runpod|vastai`` against the simulator's URL) with the default fast
interval; the control plane is tests/controlplane. Pods are Jobs' pods (restartPolicy Never,
one GPU), created with spec.nodeName set so the scheduler is not in the loop.

Figures (bench/results/cloud_<cloud>.json):
* ``to_running_s``: first pod POSTed → every pod Running.
* ``floor_s``: the least any agent could take: the moment the cloud's limits could have admitted
  the last create (one offer read + one create per pod, nothing else; not before the last pod
  exists), plus a mean create response and the cloud's boot time. ``ratio_to_floor`` = the two
  divided.                                                          TARGET <= 1.2
* ``creates_in_flight``: create requests the cloud was working on, per second of the burst.
* ``stages``: where each pod's time went (p50/p99): pod POSTed → create received by the cloud;
  the create's response time; create answered → instance ready at the cloud; ready at the cloud
  → pod Ready in the API (``ready_to_pod_ready``, TARGET p99 <= 2.5 s at the default 2 s fast
  interval, RunPod).
* ``requests``: every request the cloud received, by operation and status (429s included).
* ``delete_s`` and ``instances_left``: all pods deleted → gone; instances still billing. TARGET 0

Run: ``python -m bench.cloud_latency --cloud runpod --pods 1000`` or ``--cloud vastai --pods
200`` (``--state-dir`` reuses a control plane started with ``python -m tests.controlplane up``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bench.lifecycle import AgentProcess, create_pods
from tests.agent_harness import admin_client
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import Changed, Synced, watch_resource
from vk_trio.latency import Latency
from vk_trio.sim import runpod as rp
from vk_trio.sim import vastai as va
from vk_trio.sim.vastai.offers import SimOffer

TARGET_RATIO = 1.2
TARGET_READY_P99_S = 2.5
IMAGE = "bench/trainer:1"
API_KEY = "bench-key"


def pod_body(name: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"bench": "cloud-latency"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "trainer",
                    "image": IMAGE,
                    "command": ["python", "train.py"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }


@dataclass
class PodTimes:
    """When (time.monotonic) the watch saw each pod Running and Ready, by pod uid."""

    running: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    alive: set[str] = field(default_factory=set)
    changed: trio.Event = field(default_factory=trio.Event)

    async def handle(self, event: Synced[Pod] | Changed[Pod]) -> None:
        pods = event.items if isinstance(event, Synced) else [event.object]
        for pod in pods:
            name = pod.metadata.uid
            if isinstance(event, Changed) and event.type == "DELETED":
                self.alive.discard(name)
                continue
            self.alive.add(name)
            now = time.monotonic()
            if pod.status.phase == "Running":
                self.running.setdefault(name, now)
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions):
                self.ready.setdefault(name, now)
        self.changed.set()
        self.changed = trio.Event()

    async def until(self, probe: Callable[[], bool], *, limit: float) -> None:
        with trio.fail_after(limit):
            while not probe():
                await self.changed.wait()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 2)


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 50), "p99": pct(values, 99), "max": pct(values, 100)}


def in_flight(spans: list[tuple[float, float]], start: float, end: float) -> list[int]:
    """How many spans were open at each whole second from ``start`` to ``end``."""
    return [sum(1 for a, b in spans if a <= start + s < b) for s in range(int(end - start) + 1)]


# --- the two clouds ---------------------------------------------------------------------------


class Cloud:
    """What the benchmark needs of a simulated cloud, on the monotonic clock of this process."""

    name = ""
    create_op = ""

    async def serve(self, nursery: trio.Nursery) -> None:
        raise NotImplementedError

    def flags(self) -> dict[str, Any]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def requests(self) -> list[tuple[str, int, float, float]]:
        """(operation, status, received, answered) of every request, monotonic seconds."""
        raise NotImplementedError

    def creates(self) -> dict[str, tuple[float, float]]:
        """Pod uid → (received, answered) of the create that rented its instance."""
        raise NotImplementedError

    def ready_at(self) -> dict[str, float]:
        """Pod uid → when its instance was ready at the cloud (monotonic)."""
        raise NotImplementedError

    def live_instances(self) -> int:
        raise NotImplementedError

    def floor(self, *, pods: int, first_post: float, last_post: float) -> dict[str, float]:
        raise NotImplementedError

    def limits(self) -> dict[str, Any]:
        raise NotImplementedError


class RunPodCloud(Cloud):
    name = "runpod"
    create_op = "createPod"

    def __init__(self, pods: int, *, minute_quota: int | None) -> None:
        self.latency = Latency(rp.REALISTIC_LATENCY, seed=10)
        limiter = rp.RateLimiter()
        if minute_quota is not None:
            limiter = rp.RateLimiter.per(minute=minute_quota)
        self.sim = rp.RunPodSim(
            api_key=API_KEY,
            catalog=rp.Catalog.default(per_slot=pods + 10),
            rate_limiter=limiter,
            latency=self.latency,
            seed=10,
        )
        self.sim.script_workload(IMAGE, rp.Workload(lines=("epoch 1",), duration=None))
        self.offset = 0.0  # monotonic - sim clock

    async def serve(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.sim.serve)
        self.offset = time.monotonic() - self.sim.clock.now()

    def flags(self) -> dict[str, Any]:
        return {"provider": "runpod", "runpod_api_url": self.sim.url}

    def env(self) -> dict[str, str]:
        return {"RUNPOD_API_KEY": API_KEY, "VK_TRIO_REGISTRY_MIRROR": self.sim.registry_url}

    def requests(self) -> list[tuple[str, int, float, float]]:
        return [
            (r.operation, r.status, r.received_at + self.offset, r.answered_at + self.offset)
            for r in self.sim.requests
        ]

    def creates(self) -> dict[str, tuple[float, float]]:
        found: dict[str, tuple[float, float]] = {}
        for r in self.sim.requests_for("createPod"):
            if r.status == 201 and isinstance(r.body, dict):
                uid = str(r.body.get("name", "")).split(".")[-2]
                found.setdefault(uid, (r.received_at + self.offset, r.answered_at + self.offset))
        return found

    def ready_at(self) -> dict[str, float]:
        return {
            pod.env.get("VK_TRIO_KEY", "").partition(".")[0]: pod.ready_at + self.offset
            for pod in self.sim.pods(include_terminated=True)
            if pod.ready_at is not None
        }

    def live_instances(self) -> int:
        return len(self.sim.pods())

    def floor(self, *, pods: int, first_post: float, last_post: float) -> dict[str, float]:
        """The earliest the windows could admit one catalog read and a create per pod after
        the first pod was posted (given what the agent had spent of them before), not before
        the last pod exists; then a mean create and the boot."""
        limiter = self.sim.faults.limiter
        t0 = first_post - self.offset
        admitted_at = t0
        if limiter is not None and limiter.origin is not None:
            admitted = [r.received_at for r in self.sim.requests if r.status != 429]
            for window in limiter.windows:
                start = limiter.origin + (t0 - limiter.origin) // window.seconds * window.seconds
                room = window.quota - sum(1 for t in admitted if start <= t < t0)
                needed = pods + 1
                if needed > room:
                    more = -(-(needed - room) // window.quota)  # whole windows beyond this one
                    opens = start + more * window.seconds
                    admitted_at = max(admitted_at, opens)
        admitted_at = max(admitted_at, last_post - self.offset)
        timings = self.sim.timings
        boot = timings.provisioning + timings.starting + timings.ports_delay
        create = self.latency.of("createPod").mean + self.latency.of("listGpuTypes").mean
        return {
            "quota_s": round(admitted_at - t0, 2),
            "create_s": round(create, 2),
            "boot_s": boot,
            "floor_s": round(admitted_at - t0 + create + boot, 2),
        }

    def limits(self) -> dict[str, Any]:
        limiter = self.sim.faults.limiter
        windows = {w.name: w.quota for w in limiter.windows} if limiter else {}
        return {"windows": windows, "latency": str(self.latency)}


def bench_market(pods: int) -> list[SimOffer]:
    """Enough single-GPU offers for every pod (and a few to spare), at slightly varied prices."""
    return [
        SimOffer(
            id=7_000_001 + i,
            machine_id=90_001 + i,
            gpu_name="RTX 4090",
            gpu_ram=24_564,
            dph_base=round(0.30 + 0.001 * (i % 50), 3),
            geolocation="Texas, US",
            public_ipaddr=f"198.51.100.{i % 250 + 1}",
            direct_port_start=40_000 + 100 * (i % 200),
            available=1,
        )
        for i in range(pods + 20)
    ]


class VastCloud(Cloud):
    name = "vastai"
    create_op = "createInstance"

    def __init__(self, pods: int) -> None:
        self.latency = Latency(va.REALISTIC_LATENCY, seed=10)
        self.epoch = time.time() - trio.current_time()
        self.sim = va.VastSim(
            api_keys=[API_KEY],
            offers=bench_market(pods),
            clock=va.trio_clock(self.epoch),
            latency=self.latency,
        )
        self.sim.script(IMAGE, va.Workload())
        self.offset = 0.0

    async def serve(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.sim.serve)
        self.offset = time.monotonic() - self.sim.now()

    def flags(self) -> dict[str, Any]:
        return {"provider": "vastai", "vast_api_url": self.sim.url}

    def env(self) -> dict[str, str]:
        return {"VAST_API_KEY": API_KEY, "VK_TRIO_REGISTRY_MIRROR": self.sim.registry_url}

    def requests(self) -> list[tuple[str, int, float, float]]:
        return [
            (e.operation, e.status, e.received_at + self.offset, e.answered_at + self.offset)
            for e in self.sim.journal
        ]

    def creates(self) -> dict[str, tuple[float, float]]:
        found: dict[str, tuple[float, float]] = {}
        for e in self.sim.journal:
            if e.operation == "createInstance" and e.status == 200:
                label = str(json.loads(e.body or b"{}").get("label", ""))
                uid = label.split("/")[2].partition(".")[0] if label.count("/") >= 2 else ""
                found.setdefault(uid, (e.received_at + self.offset, e.answered_at + self.offset))
        return found

    def ready_at(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for inst in self.sim.instances():
            parts = (inst.label or "").split("/")
            if len(parts) >= 3:
                found[parts[2].partition(".")[0]] = inst.ready_at + self.offset
        return found

    def live_instances(self) -> int:
        return len(self.sim.instances())

    def floor(self, *, pods: int, first_post: float, last_post: float) -> dict[str, float]:
        limits = self.sim.limiter.limits
        interval = limits.intervals.get("createInstance", 0.0)
        search = self.latency.of("searchOffers").mean
        quota = max(search + (pods - 1) * interval, last_post - first_post)
        boot = va.Workload().running_after
        create = self.latency.of("createInstance").mean
        return {
            "quota_s": round(quota, 2),
            "create_s": round(create, 2),
            "boot_s": boot,
            "floor_s": round(quota + create + boot, 2),
        }

    def limits(self) -> dict[str, Any]:
        limits = self.sim.limiter.limits
        return {
            "intervals": dict(limits.intervals),
            "windows": {k: list(v) for k, v in limits.windows.items()},
            "latency": str(self.latency),
        }


# --- the run ----------------------------------------------------------------------------------


async def run(
    cp: ControlPlane,
    cloud: Cloud,
    *,
    pods: int,
    fast_interval: float = 2.0,
    qps: float = 100.0,
    burst: int = 200,
    limit: float = 7200.0,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vk-bench-cloud-"))
    node = f"bench-{cloud.name}-{int(time.time())}"
    result: dict[str, Any] = {
        "benchmark": "cloud_latency",
        "cloud": cloud.name,
        "pods": pods,
        "fast_interval": fast_interval,
        "qps": qps,
        "burst": burst,
    }
    async with trio.open_nursery() as cloud_nursery:
        await cloud.serve(cloud_nursery)
        result["limits"] = cloud.limits()
        flags = {
            "kubeconfig": str(cp.kubeconfig),
            "node_name": node,
            "kube_qps": qps,
            "kube_burst": burst,
            "fast_interval": fast_interval,
            "health_server_address": "127.0.0.1:0",
            "node_ip": "127.0.0.1",
            **cloud.flags(),
        }
        saved = {k: os.environ.get(k) for k in cloud.env()}
        os.environ.update(cloud.env())  # the agent process inherits them
        agent = AgentProcess(flags, work)
        ns = f"bench-{cloud.name}-{int(time.time())}"
        try:
            async with admin_client(cp) as client:
                cp.kubectl("create", "namespace", ns)
                try:
                    await agent.start()
                    await measure(
                        agent, client, cloud, result, ns=ns, node=node, pods=pods, limit=limit
                    )
                finally:
                    await agent.stop()
                    cp.kubectl("delete", "namespace", ns, "--wait=false")
                    await client.request("DELETE", f"/api/v1/nodes/{node}")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        cloud_nursery.cancel_scope.cancel()
    result["targets"] = {"ratio_to_floor": TARGET_RATIO, "ready_to_pod_ready_p99_s": 2.5}
    result["python"] = sys.version.split()[0]
    return result


async def measure(
    agent: AgentProcess,
    client: KubeClient,
    cloud: Cloud,
    result: dict[str, Any],
    *,
    ns: str,
    node: str,
    pods: int,
    limit: float,
) -> None:
    times = PodTimes()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: watch_resource(
                client, PODS, times.handle, namespace=ns, task_status=task_status
            )
        )
        names = [f"p{i:05d}" for i in range(pods)]
        posted = await create_pods(client, ns, node, names, body=pod_body)
        first, last = min(posted.values()), max(posted.values())
        result["create_s"] = round(last - first, 2)
        with trio.move_on_after(limit):
            await times.until(lambda: len(times.running) >= pods, limit=math.inf)
        if len(times.running) < pods:  # gave up: say how far it got
            result["gave_up_after_s"] = limit
            result["running_when_given_up"] = len(times.running)
            times.running.update({uid: time.monotonic() for uid in posted})
        result["to_running_s"] = round(max(times.running.values()) - first, 2)
        with trio.move_on_after(600):
            await times.until(lambda: len(times.ready) >= pods, limit=math.inf)
        report = await agent.report()
        floor = cloud.floor(pods=pods, first_post=first, last_post=last)
        result["floor"] = floor
        result["ratio_to_floor"] = round(result["to_running_s"] / floor["floor_s"], 2)
        figures(cloud, result, posted=posted, times=times, first=first)
        result["agent_requests_to_running"] = report["agent_requests"]
        result["provider_calls_to_running"] = report["provider_calls_by_method"]
        result["events_dropped"] = report["events_dropped"]
        result["rss_mb"] = report["rss_mb"]

        start = time.monotonic()
        await client.request(
            "DELETE", PODS.path(namespace=ns), params={"labelSelector": "bench=cloud-latency"}
        )
        await times.until(lambda: not times.alive, limit=3600)
        result["delete_s"] = round(time.monotonic() - start, 2)
        with trio.move_on_after(120):
            while cloud.live_instances():  # noqa: ASYNC110 - the simulator has no event for it
                await trio.sleep(1)
        result["instances_left"] = cloud.live_instances()
        nursery.cancel_scope.cancel()


def figures(
    cloud: Cloud,
    result: dict[str, Any],
    *,
    posted: dict[str, float],
    times: PodTimes,
    first: float,
) -> None:
    requests = cloud.requests()
    creates = [r for r in requests if r[0] == cloud.create_op and r[1] < 300]
    end = max(times.running.values())
    series = in_flight([(a, b) for _, _, a, b in creates], first, end)
    result["creates_in_flight"] = {
        "max": max(series, default=0),
        "mean": round(statistics.fmean(series), 1) if series else 0,
        "per_second": series,
    }
    counts = Counter(f"{op or '?'} {status}" for op, status, _, _ in requests if op)
    result["requests"] = dict(sorted(counts.items()))
    # where each pod's time went, from the cloud's own record of its create and its instance
    creates_of = cloud.creates()
    ready_at = cloud.ready_at()
    stages: dict[str, list[float]] = {
        "post_to_create_received": [],
        "create_response": [],
        "create_answered_to_ready_at_cloud": [],
        "ready_to_pod_ready": [],
    }
    for uid, post in posted.items():
        if uid in creates_of:
            got, answered = creates_of[uid]
            stages["post_to_create_received"].append(got - post)
            stages["create_response"].append(answered - got)
            if uid in ready_at:
                stages["create_answered_to_ready_at_cloud"].append(ready_at[uid] - answered)
        if uid in ready_at and uid in times.ready:
            stages["ready_to_pod_ready"].append(times.ready[uid] - ready_at[uid])
    result["stages"] = {k: spread(v) for k, v in stages.items() if v}
    slowest = sorted(
        (times.ready[uid] - ready_at[uid], ready_at[uid] - first, uid[:8])
        for uid in ready_at
        if uid in times.ready
    )[-5:]
    result["slowest_ready_to_pod_ready"] = [
        {"took_s": round(took, 2), "ready_at_cloud_s": round(at, 2), "pod": uid}
        for took, at, uid in slowest
    ]
    last_answer = max((b for _, b in creates_of.values()), default=first)
    result["last_create_answered_s"] = round(last_answer - first, 2)
    result["ready_to_pod_ready"] = result["stages"].get("ready_to_pod_ready", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vk-trio against a slow, rate-limited cloud")
    parser.add_argument("--cloud", choices=("runpod", "vastai"), default="runpod")
    parser.add_argument("--pods", type=int, default=None, help="1000 (runpod), 200 (vastai)")
    parser.add_argument("--fast-interval", type=float, default=2.0)
    parser.add_argument("--minute-quota", type=int, default=None, help="RunPod: per minute")
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--limit", type=float, default=7200.0, help="give up after (s)")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    pods = args.pods or (1000 if args.cloud == "runpod" else 200)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)

    async def main_async() -> dict[str, Any]:
        cloud: Cloud = (
            RunPodCloud(pods, minute_quota=args.minute_quota)
            if args.cloud == "runpod"
            else VastCloud(pods)
        )
        return await run(
            cp,
            cloud,
            pods=pods,
            fast_interval=args.fast_interval,
            qps=args.qps,
            burst=args.burst,
            limit=args.limit,
        )

    try:
        result = trio.run(main_async)
    finally:
        if args.state_dir is None:
            launcher.down(state)
    out = args.out or Path(f"bench/results/cloud_{args.cloud}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    shown = {k: v for k, v in result.items() if k != "creates_in_flight"}
    shown["creates_in_flight"] = {
        k: v for k, v in result["creates_in_flight"].items() if k != "per_second"
    }
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
