"""The node agent alone in a process of its own, driven by bench/lifecycle.py.

Why: resident memory is the agent's only if nothing else lives in its process. The benchmark's
client, its watch and its own thousands of decoded pods would otherwise count. The agent runs
as ``vk-trio run --provider fake`` does (``run_agent``), with the in-memory fake cloud at zero
latency inside it, the way a real provider client holds its last instance list. With
``"provider": "runpod"`` or ``"vastai"`` in the flags it runs that provider as ``vk-trio run``
would, against the API URL in the flags and the key in the environment (bench/cloud_latency.py
points both at a simulated cloud in its own process).
``bench_clouds: 2`` the node fronts two such clouds through the Router (providers/router.py),
as ``--provider runpod,vastai`` does, and the report says how often each was listed.

What only this process can see is written as JSON to the file named on the command line: once
when the node is Ready, and again on every SIGUSR1 (written to a temporary name, then renamed,
so the reader never sees half a file). It holds each pod's provider create time
(``time.monotonic``: on Linux one clock for every process), the provider calls, the API requests
the agent sent, the fake cloud's live instances, and this process's RSS and peak RSS.

Run: ``python -m bench.agent_process '<flags as JSON>' <report.json>`` (flags as load_config
takes them).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio

from vk_trio.config import load_config
from vk_trio.daemon import Agent, run_agent
from vk_trio.providers.base import Instance, InstanceSpec, Offer, Provider
from vk_trio.providers.fake import CatalogEntry, FakeProvider, Workload
from vk_trio.providers.router import Router


class Recording:
    """Wraps a provider to time its create calls and count every call (and each method's)."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.create_at: dict[str, float] = {}
        self.calls = 0
        self.lists = 0

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
        self.lists += 1
        return await self.inner.list()

    async def delete(self, instance_id: str) -> None:
        self.calls += 1
        await self.inner.delete(instance_id)


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) of a process, in MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": found["VmRSS"], "peak_rss_mb": found["VmHWM"]}


def zero_latency_cloud(node: str, *, name: str = "fake", capacity: int = 10**6) -> FakeProvider:
    return FakeProvider(
        node,
        name=name,
        catalog=[
            CatalogEntry(
                offer_id="bench",
                gpu_type="RTX 4090",
                gpu_memory_gb=24,
                price_per_gpu_hour=0.4,
                location="bench",
                capacity=capacity,
            )
        ],
        default_workload=Workload(boot_seconds=0, start_seconds=0),
    )


def report(agent: Agent, clouds: list[Recording], fakes: list[FakeProvider], out: Path) -> None:
    create_at: dict[str, float] = {}
    for cloud in clouds:
        create_at |= cloud.create_at
    body: dict[str, Any] = {
        "provider_calls": (
            sum(cloud.calls for cloud in clouds)
            if clouds
            else sum(sum(calls.values()) for calls in agent.provider_calls.values())
        ),
        "provider_calls_by_method": {
            f"{cloud}:{method}:{outcome}": n
            for cloud, calls in agent.provider_calls.items()
            for (method, outcome), n in calls.items()
        },
        "agent_requests": dict(agent.kube_requests),
        "events_dropped": agent.events_dropped(),
        **memory_mb(),
    }
    if clouds:
        body["create_at"] = create_at
        body["list_calls"] = {cloud.name: cloud.lists for cloud in clouds}
    if fakes:
        body["live_instances"] = sum(len(fake.live_instances()) for fake in fakes)
        body["instances_per_cloud"] = {fake.name: len(fake.live_instances()) for fake in fakes}
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps(body))
    os.replace(partial, out)


async def serve(flags: dict[str, Any], out: Path) -> None:
    """``flags`` as load_config takes them, plus ``bench_clouds`` (2: the node fronts two clouds
    through the Router, the first with ``bench_capacity`` machines, the second unlimited)."""
    flags = dict(flags)
    count = int(flags.pop("bench_clouds", 1))
    capacity = int(flags.pop("bench_capacity", 10**6))
    config = load_config(flags=flags, env={})
    fakes: list[FakeProvider] = []
    if count > 1:
        fakes = [
            zero_latency_cloud(config.node_name, name="runpod", capacity=capacity),
            zero_latency_cloud(config.node_name, name="vastai"),
        ]
    elif config.provider == "fake":
        fakes = [zero_latency_cloud(config.node_name)]
    clouds = [Recording(fake) for fake in fakes]
    provider: Provider | None = None  # a real provider's client: run_agent makes it
    if clouds:
        provider = clouds[0] if count == 1 else Router(clouds)
    with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            agent: Agent = await nursery.start(
                lambda task_status: run_agent(config, provider=provider, task_status=task_status)
            )
            report(agent, clouds, fakes, out)
            async for signum in signals:
                if signum == signal.SIGTERM:
                    nursery.cancel_scope.cancel()
                    break
                report(agent, clouds, fakes, out)


def main(argv: list[str]) -> int:
    flags, out = json.loads(argv[0]), Path(argv[1])
    trio.run(serve, flags, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
