"""A simulated Vast.ai on loopback: offer search, instances, logs, limits, quirks and a bill.

It speaks the part of Vast.ai's REST API that vk-trio uses, checked against Vast.ai's own OpenAPI
document, and reproduces the behaviour clients measured in the field (offers that vanish between
search and buy, ``{"instances": null}`` reads, ports only when running, 429s without
Retry-After), so the Vast.ai provider is tested against the service's rules rather than against
our memory of them. It imports nothing of the agent.
"""

from vk_trio.sim.vastai.app import (
    DEFAULT_API_KEY,
    DEFAULT_EPOCH,
    REALISTIC_LATENCY,
    Exchange,
    VastSim,
    trio_clock,
)
from vk_trio.sim.vastai.examples import seed_workloads
from vk_trio.sim.vastai.offers import Marketplace, SimOffer, default_offers
from vk_trio.sim.vastai.ratelimit import RateLimits
from vk_trio.sim.vastai.workloads import Workload

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_EPOCH",
    "REALISTIC_LATENCY",
    "Exchange",
    "Marketplace",
    "RateLimits",
    "SimOffer",
    "VastSim",
    "Workload",
    "default_offers",
    "seed_workloads",
    "trio_clock",
]
