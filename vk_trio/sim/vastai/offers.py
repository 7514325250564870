"""The simulated marketplace: machines for rent, priced the way Vast.ai prices them.

An offer is one rentable slice of a host machine. It carries the fields clients filter and rank
on, with the units the real API uses (so a client that gets a unit wrong gets no offers): GPU
names with spaces (``"RTX 4090"``), ``gpu_ram``/``cpu_ram`` in MB, ``disk_space`` in GB,
``geolocation`` as ``"City, CC"``, ``reliability2`` in 0..1, ``storage_cost`` in $/GB/month.
``dph_total`` is what an hour costs *including* storage at the search's ``allocated_storage``
(``dph_base + allocated_storage * storage_cost / 720``), so the price depends on the query.

Stock changes: ``available`` counts how many more instances the offer takes; renting takes one,
destroying gives it back, and tests change it through ``Marketplace`` (someone else rents it,
the host leaves).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

HOURS_PER_MONTH = 720.0  # Vast.ai prices storage per 30-day month
DEFAULT_ALLOCATED_STORAGE = 8.0  # GB, the documented server default


@dataclass(frozen=True, kw_only=True)
class SimOffer:
    """One machine slice for rent. ``id`` is what ``PUT /api/v0/asks/{id}/`` takes."""

    id: int
    machine_id: int
    host_id: int = 1
    gpu_name: str
    num_gpus: int = 1
    gpu_ram: int  # MB per GPU
    cpu_cores: int | None = 32  # None happens (gpuhunt skips such offers)
    cpu_cores_effective: float = 8.0
    cpu_ram: int = 64_000  # MB, machine total
    disk_space: float = 500.0  # GB free on the machine
    dph_base: float  # $/h for the GPUs
    storage_cost: float = 0.15  # $/GB/month
    min_bid: float = 0.0
    reliability2: float = 0.99
    geolocation: str = "Texas, US"
    public_ipaddr: str = "203.0.113.10"
    direct_port_count: int = 20
    direct_port_start: int = 40000
    verification: str = "verified"
    cuda_max_good: float = 12.8
    compute_cap: int = 890
    inet_down: float = 900.0
    inet_up: float = 800.0
    inet_down_cost: float = 0.002
    inet_up_cost: float = 0.002
    static_ip: bool = False
    hosting_type: int = 0
    external: bool = False
    score: float = 100.0
    end_date: float = 1_900_000_000.0
    available: int = 1  # how many more instances fit

    def storage_dph(self, allocated_storage: float) -> float:
        return allocated_storage * self.storage_cost / HOURS_PER_MONTH

    def dph_total(self, allocated_storage: float) -> float:
        return self.dph_base + self.storage_dph(allocated_storage)

    @property
    def country(self) -> str:
        return self.geolocation.rsplit(",", 1)[-1].strip()

    def as_json(self, *, allocated_storage: float, bid: bool = False) -> dict[str, Any]:
        """The offer as ``POST /api/v0/bundles/`` returns it, priced at ``allocated_storage``."""
        gpu_cost = self.min_bid if bid else self.dph_base
        disk_hour = self.storage_dph(allocated_storage)
        total = gpu_cost + disk_hour
        cost = {
            "gpuCostPerHour": gpu_cost,
            "diskHour": disk_hour,
            "totalHour": total,
            "discountTotalHour": 0.0,
            "discountedTotalPerHour": total,
        }
        return {
            "id": self.id,
            "ask_contract_id": self.id,
            "bundle_id": self.id * 10,
            "machine_id": self.machine_id,
            "host_id": self.host_id,
            "gpu_name": self.gpu_name,
            "num_gpus": self.num_gpus,
            "gpu_ram": self.gpu_ram,
            "gpu_total_ram": self.gpu_ram * self.num_gpus,
            "gpu_frac": 1.0,
            "gpu_arch": "nvidia",
            "cpu_cores": self.cpu_cores,
            "cpu_cores_effective": self.cpu_cores_effective,
            "cpu_ram": self.cpu_ram,
            "disk_space": self.disk_space,
            "dph_base": self.dph_base,
            "dph_total": total,
            "storage_cost": self.storage_cost,
            "storage_total_cost": disk_hour,
            "min_bid": self.min_bid,
            "reliability": self.reliability2,
            "reliability2": self.reliability2,
            "geolocation": self.geolocation,
            "public_ipaddr": self.public_ipaddr,
            "direct_port_count": self.direct_port_count,
            "verification": self.verification,
            "cuda_max_good": self.cuda_max_good,
            "compute_cap": self.compute_cap,
            "inet_down": self.inet_down,
            "inet_up": self.inet_up,
            "inet_down_cost": self.inet_down_cost,
            "inet_up_cost": self.inet_up_cost,
            "static_ip": self.static_ip,
            "hosting_type": self.hosting_type,
            "external": self.external,
            "rentable": self.available > 0,
            "rented": False,
            "is_bid": bid,
            "score": self.score,
            "end_date": self.end_date,
            "search": cost,
            "instance": cost,
        }


def default_offers() -> list[SimOffer]:
    """A small, varied market: several regions, GPU names with spaces, one unverified host, one
    unreliable host, one without direct ports and one with ``cpu_cores: null``."""
    ids = itertools.count(5_000_001)
    machines = itertools.count(80_001)

    def offer(**kw: Any) -> SimOffer:
        machine = next(machines)
        last = machine % 250
        return SimOffer(
            id=next(ids),
            machine_id=machine,
            public_ipaddr=f"203.0.113.{last}",
            direct_port_start=40_000 + 100 * (machine % 200),
            **kw,
        )

    return [
        offer(
            gpu_name="RTX 3060", gpu_ram=12_288, dph_base=0.07, geolocation="Ohio, US", available=4
        ),
        offer(
            gpu_name="RTX 3060",
            gpu_ram=12_288,
            dph_base=0.06,
            geolocation="Quebec, CA",
            available=2,
        ),
        offer(
            gpu_name="RTX 3060 Ti",
            gpu_ram=8_192,
            dph_base=0.08,
            geolocation="Texas, US",
            available=3,
        ),
        offer(
            gpu_name="RTX 3090",
            gpu_ram=24_576,
            dph_base=0.18,
            geolocation="Bavaria, DE",
            available=3,
        ),
        offer(
            gpu_name="RTX 3090",
            gpu_ram=24_576,
            dph_base=0.11,
            geolocation="Nevada, US",
            reliability2=0.62,
            available=3,
        ),
        offer(
            gpu_name="RTX 4090",
            gpu_ram=24_564,
            dph_base=0.31,
            geolocation="California, US",
            available=4,
        ),
        offer(
            gpu_name="RTX 4090", gpu_ram=24_564, dph_base=0.29, geolocation="Tokyo, JP", available=2
        ),
        offer(
            gpu_name="RTX 4090",
            gpu_ram=24_564,
            dph_base=0.22,
            geolocation="Oregon, US",
            verification="unverified",
            available=2,
        ),
        offer(
            gpu_name="RTX 4090",
            gpu_ram=24_564,
            dph_base=0.25,
            geolocation="Gauteng, ZA",
            direct_port_count=0,
            available=2,
        ),
        offer(
            gpu_name="RTX A5000",
            gpu_ram=24_564,
            dph_base=0.20,
            geolocation="Ile-de-France, FR",
            cpu_cores=None,
            available=2,
        ),
        offer(
            gpu_name="L40S", gpu_ram=46_068, dph_base=0.79, geolocation="Sao Paulo, BR", available=2
        ),
        offer(
            gpu_name="A100 SXM4",
            gpu_ram=81_920,
            dph_base=1.10,
            geolocation="Singapore, SG",
            available=2,
        ),
        offer(
            gpu_name="H100 SXM",
            gpu_ram=81_559,
            num_gpus=2,
            dph_base=3.60,
            geolocation="Virginia, US",
            available=1,
        ),
        offer(
            gpu_name="H100 SXM",
            gpu_ram=81_559,
            dph_base=1.87,
            geolocation="New South Wales, AU",
            available=2,
        ),
    ]


class Marketplace:
    """The offers on sale, by id. Mutations are the "stock changes" tests script."""

    def __init__(self, offers: list[SimOffer] | None = None) -> None:
        self._offers: dict[int, SimOffer] = {}
        for offer in offers if offers is not None else default_offers():
            self.add(offer)

    def add(self, offer: SimOffer) -> SimOffer:
        self._offers[offer.id] = offer
        return offer

    def remove(self, offer_id: int) -> None:
        """The host withdrew the machine: searches no longer find it, rentals fail."""
        self._offers.pop(offer_id, None)

    def set_available(self, offer_id: int, available: int) -> None:
        self._offers[offer_id] = replace(self._offers[offer_id], available=max(0, available))

    def get(self, offer_id: int) -> SimOffer | None:
        return self._offers.get(offer_id)

    def all(self) -> list[SimOffer]:
        return list(self._offers.values())

    def take(self, offer_id: int) -> SimOffer | None:
        """Rent one slice; ``None`` when the offer is gone or sold out."""
        offer = self._offers.get(offer_id)
        if offer is None or offer.available <= 0:
            return None
        self._offers[offer_id] = replace(offer, available=offer.available - 1)
        return offer

    def give_back(self, offer_id: int) -> None:
        offer = self._offers.get(offer_id)
        if offer is not None:
            self._offers[offer_id] = replace(offer, available=offer.available + 1)
