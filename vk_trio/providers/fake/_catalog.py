"""The machines the fake marketplace rents, and which of them fit a pod's needs right now.

Capacity is what makes placement interesting: an offer disappears from ``offers()`` while all of
its machines are taken, and comes back when an instance exits or is deleted. Capacity is counted
from the shared books, so two nodes (or two processes) compete for the same machines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vk_trio.providers.base import Offer, Requirements
from vk_trio.providers.fake._store import State


@dataclass(frozen=True, kw_only=True)
class CatalogEntry:
    """A kind of machine for rent: up to ``capacity`` instances of it at once.

    An instance has 1 to ``max_gpu_count`` GPUs and costs ``price_per_gpu_hour`` per GPU.
    """

    offer_id: str
    gpu_type: str
    gpu_memory_gb: float
    price_per_gpu_hour: float
    location: str = ""
    capacity: int = 1
    max_gpu_count: int = 8


DEFAULT_CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        offer_id="fake-rtx3090",
        gpu_type="RTX 3090",
        gpu_memory_gb=24,
        price_per_gpu_hour=0.22,
        location="Oslo, NO",
        capacity=2,
    ),
    CatalogEntry(
        offer_id="fake-rtx4090",
        gpu_type="RTX 4090",
        gpu_memory_gb=24,
        price_per_gpu_hour=0.34,
        location="Prague, CZ",
        capacity=4,
    ),
    CatalogEntry(
        offer_id="fake-a100",
        gpu_type="A100 80GB",
        gpu_memory_gb=80,
        price_per_gpu_hour=1.19,
        location="Kansas City, US",
        capacity=2,
    ),
    CatalogEntry(
        offer_id="fake-h100",
        gpu_type="H100 80GB",
        gpu_memory_gb=80,
        price_per_gpu_hour=2.49,
        location="Montreal, CA",
        capacity=2,
    ),
)


def gpus_for(need: Requirements) -> int:
    """The fake rents whole GPUs; a CPU-only pod gets one."""
    return max(1, need.gpu_count)


def in_use(state: State, offer_id: str, now: float) -> int:
    """Machines of this offer taken at ``now``, by any node."""
    return sum(1 for r in state.instances if r.offer_id == offer_id and r.holds_capacity(now))


def matching_offers(
    entries: Iterable[CatalogEntry], need: Requirements, *, state: State, now: float, provider: str
) -> list[Offer]:
    """Offers with a free machine that meet ``need`` (CPU, memory and disk always do), cheapest
    first (ties by offer id, so the order is stable)."""
    gpus = gpus_for(need)
    found = []
    for entry in entries:
        price = entry.price_per_gpu_hour * gpus
        feasible = (
            gpus <= entry.max_gpu_count
            and (need.gpu_memory_gb is None or entry.gpu_memory_gb >= need.gpu_memory_gb)
            and (need.max_price_per_hour is None or price <= need.max_price_per_hour)
        )
        free = entry.capacity - in_use(state, entry.offer_id, now)
        if feasible and free > 0:
            found.append(
                Offer(
                    provider=provider,
                    offer_id=entry.offer_id,
                    gpu_type=entry.gpu_type,
                    gpu_count=gpus,
                    gpu_memory_gb=entry.gpu_memory_gb,
                    price_per_hour=price,
                    location=entry.location,
                    cloud_type="fake",
                    details={"free": str(free)},
                )
            )
    return sorted(found, key=lambda offer: (offer.price_per_hour, offer.offer_id))
