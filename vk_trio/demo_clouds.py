"""The simulated clouds ``vk-trio demo`` runs against, and what the demo shows of them.

``vk-trio demo`` runs on the simulated RunPod by default; ``--provider vastai`` on the simulated
Vast.ai, ``--provider runpod,vastai`` on both at once, so the node fronts two clouds and rents
the cheapest offer of either. This module starts them (RunPod fast, Vast.ai with its real rate
limits, which the Vast.ai provider paces itself to), gives the agent their URLs and keys, reads
a pod's annotations back as "which instance, which GPU, where, at what price", and turns the
simulators' billing ledgers into what each cloud would have charged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import trio

from vk_trio.sim.runpod import RunPodSim, Timings
from vk_trio.sim.runpod import seed_workloads as runpod_seeds
from vk_trio.sim.vastai import VastSim, trio_clock
from vk_trio.sim.vastai import seed_workloads as vast_seeds

SIM_KEY = "vk-trio-demo-simulator-key"
TITLES = {"runpod": "RunPod", "vastai": "Vast.ai"}
VAST = "vastai.vk-trio.io/"


@dataclass(frozen=True, kw_only=True)
class Rented:
    """One pod's instance, as its annotations tell it."""

    cloud: str
    instance_id: str
    gpu: str  # "1x NVIDIA RTX 2000 Ada Generation" or "1x RTX 3090"
    where: str
    price: float


@dataclass
class DemoClouds:
    names: tuple[str, ...]  # as --provider gave them: the order breaks ties between clouds
    runpod: RunPodSim | None = None
    vast: VastSim | None = None

    def agent_flags(self) -> dict[str, Any]:
        """The agent's provider settings: the clouds, their URLs, the scripted images' mirror."""
        flags: dict[str, Any] = {"provider": ",".join(self.names)}
        if self.runpod is not None:
            flags["runpod_api_url"] = self.runpod.url
            flags["registry_mirror"] = self.runpod.registry_url
        if self.vast is not None:
            flags["vast_api_url"] = self.vast.url
            flags.setdefault("registry_mirror", self.vast.registry_url)
        return flags

    def keys(self) -> dict[str, str]:
        keys = {"runpod": "RUNPOD_API_KEY", "vastai": "VAST_API_KEY"}
        return {keys[name]: SIM_KEY for name in self.names}

    def billing(self) -> bool:
        """Is any instance still billed, on any cloud?"""
        runpod = self.runpod is not None and bool(self.runpod.billing())
        return runpod or (self.vast is not None and bool(self.vast.ledger.accruing()))

    def rented(self, notes: dict[str, str]) -> Rented | None:
        """The instance a pod's annotations name (None: not rented yet)."""
        cloud = notes.get("vk-trio.io/cloud") or self.names[0]
        if cloud == "vastai" and notes.get(VAST + "instance-id") and notes.get(VAST + "gpu"):
            return Rented(
                cloud=cloud,
                instance_id=notes[VAST + "instance-id"],
                gpu=notes.get(VAST + "gpu", "?"),
                where=notes.get(VAST + "geolocation", "?"),
                price=float(notes.get(VAST + "price-per-hour", "0")),
            )
        if cloud == "runpod" and notes.get("runpod.io/pod-id"):
            return Rented(
                cloud=cloud,
                instance_id=notes["runpod.io/pod-id"],
                gpu=f"1x {notes.get('runpod.io/gpu-type', '?')}",
                where=notes.get("runpod.io/datacenter", "?"),
                price=float(notes.get("runpod.io/cost-per-hr", "0")),
            )
        return None

    def memory_gb(self, rented: Rented) -> float | None:
        if rented.cloud == "runpod" and self.runpod is not None:
            gpu = self.runpod.catalog.gpus.get(rented.gpu.removeprefix("1x "))
            return gpu.memory_gb if gpu else None
        if rented.cloud == "vastai" and self.vast is not None and rented.instance_id.isdigit():
            instance = self.vast.ledger.instance(int(rented.instance_id))
            return round(instance.offer.gpu_ram / 1024) if instance is not None else None
        return None

    def bill(self, rented: Rented) -> tuple[float, float]:
        """(USD charged, seconds billed) for the instance, as its cloud's ledger says."""
        if rented.cloud == "runpod" and self.runpod is not None:
            sim = self.runpod
            seconds = sum(
                (s.end if s.end is not None else sim.clock.now()) - s.start
                for s in sim.ledger.segments
                if s.pod_id == rented.instance_id
            )
            return sim.cost(rented.instance_id), seconds
        assert self.vast is not None
        instance_id = int(rented.instance_id)
        return self.vast.ledger.cost(instance_id), self.vast.ledger.billed_seconds(instance_id)


async def start_clouds(nursery: trio.Nursery, names: tuple[str, ...]) -> DemoClouds:
    """The simulated clouds ``names``, serving on loopback in ``nursery``, seeds' images
    scripted (boot, six log lines, exit 0)."""
    clouds = DemoClouds(names=names)
    if "runpod" in names:
        runpod = RunPodSim(
            api_key=SIM_KEY, timings=Timings(provisioning=2, starting=2, ports_delay=1)
        )
        for image, workload in runpod_seeds().items():
            runpod.script_workload(image, workload)
        await nursery.start(runpod.serve)
        clouds.runpod = runpod
    if "vastai" in names:
        vast = VastSim(api_keys=[SIM_KEY], clock=trio_clock(time.time() - trio.current_time()))
        for image, vast_workload in vast_seeds().items():
            vast.script(image, vast_workload)
        await nursery.start(vast.serve)
        clouds.vast = vast
    return clouds
