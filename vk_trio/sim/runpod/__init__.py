"""A simulated RunPod (REST v2) for tests, benchmarks and ``vk-trio demo``; see app.py."""

from vk_trio.sim.runpod.app import REALISTIC_LATENCY, RunPodSim
from vk_trio.sim.runpod.catalog import Catalog, DataCenter, GpuType
from vk_trio.sim.runpod.examples import seed_workloads
from vk_trio.sim.runpod.faults import Fault, RateLimiter
from vk_trio.sim.runpod.model import Phase, SimClock, SimPod, Timings
from vk_trio.sim.runpod.routes import RecordedRequest
from vk_trio.sim.runpod.state import NO_CAPACITY, Template
from vk_trio.sim.runpod.workloads import Workload

__all__ = [
    "NO_CAPACITY",
    "REALISTIC_LATENCY",
    "Catalog",
    "DataCenter",
    "Fault",
    "GpuType",
    "Phase",
    "RateLimiter",
    "RecordedRequest",
    "RunPodSim",
    "SimClock",
    "SimPod",
    "Template",
    "Timings",
    "Workload",
    "seed_workloads",
]
