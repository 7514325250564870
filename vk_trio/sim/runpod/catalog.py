"""What the simulated RunPod sells: GPU types, data centers, and stock per (GPU, DC, cloud).

v2 places exactly one GPU type per create and does not search for capacity, so stock has to be
modelled where RunPod keeps it: per GPU type, data center and cloud tier. The catalog endpoints
report it the way v2 does (``NONE``/``LOW``/``MEDIUM``/``HIGH``, only with
``include=AVAILABILITY&product=POD``); a create takes GPUs out of it and terminate/stop put them
back. Prices are the recorded list prices of 2026-08 where the research has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECURE = "SECURE"
COMMUNITY = "COMMUNITY"
CLOUDS = (SECURE, COMMUNITY)


@dataclass(frozen=True, kw_only=True)
class GpuType:
    id: str
    name: str
    memory_gb: int
    price_secure: float
    price_community: float
    max_count_secure: int = 8
    max_count_community: int = 4
    pool: str | None = None
    manufacturer: str = "NVIDIA"
    cuda_versions: tuple[str, ...] = ("12.4", "12.8")

    def price(self, cloud: str) -> float:
        return self.price_secure if cloud == SECURE else self.price_community

    def max_count(self, cloud: str) -> int:
        return self.max_count_secure if cloud == SECURE else self.max_count_community


@dataclass(frozen=True, kw_only=True)
class DataCenter:
    id: str
    region: str
    country: str
    global_network: bool = False
    compliance: tuple[str, ...] = ()


DEFAULT_GPUS = (
    GpuType(
        id="NVIDIA RTX 2000 Ada Generation",
        name="RTX 2000 Ada",
        memory_gb=16,
        price_secure=0.24,
        price_community=0.16,
        pool="ADA_16",
    ),
    GpuType(
        id="NVIDIA RTX A5000",
        name="RTX A5000",
        memory_gb=24,
        price_secure=0.27,
        price_community=0.16,
        pool="AMPERE_24",
    ),
    GpuType(
        id="NVIDIA GeForce RTX 4090",
        name="RTX 4090",
        memory_gb=24,
        price_secure=0.74,
        price_community=0.34,
        pool="ADA_24",
    ),
    GpuType(
        id="NVIDIA L40S",
        name="L40S",
        memory_gb=48,
        price_secure=0.86,
        price_community=0.79,
        pool="ADA_48_PRO",
    ),
    GpuType(
        id="NVIDIA A100 80GB PCIe",
        name="A100 PCIe",
        memory_gb=80,
        price_secure=1.64,
        price_community=1.19,
        pool="AMPERE_80",
    ),
    GpuType(
        id="NVIDIA H100 NVL",
        name="H100 NVL",
        memory_gb=94,
        price_secure=2.59,
        price_community=1.39,
        pool="HOPPER_141",
    ),
)

DEFAULT_DATACENTERS = (
    DataCenter(id="EU-RO-1", region="EUROPE", country="RO", compliance=("GDPR",)),
    DataCenter(id="EU-SE-1", region="EUROPE", country="SE", global_network=True),
    DataCenter(id="US-TX-3", region="NORTH_AMERICA", country="US", global_network=True),
    DataCenter(id="US-KS-2", region="NORTH_AMERICA", country="US", compliance=("SOC_2_TYPE_2",)),
    DataCenter(id="CA-MTL-1", region="NORTH_AMERICA", country="CA"),
)


def level(free: int, count: int = 1) -> str:
    """The v2 availability level for ``free`` GPUs when ``count`` are wanted per pod."""
    if free < max(count, 1):
        return "NONE"
    if free < 3 * count:
        return "LOW"
    if free < 8 * count:
        return "MEDIUM"
    return "HIGH"


@dataclass(kw_only=True)
class Catalog:
    """GPU types, data centers and free GPUs per (GPU type id, data center id, cloud)."""

    gpus: dict[str, GpuType] = field(default_factory=lambda: {g.id: g for g in DEFAULT_GPUS})
    datacenters: dict[str, DataCenter] = field(
        default_factory=lambda: {d.id: d for d in DEFAULT_DATACENTERS}
    )
    stock: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @classmethod
    def default(cls, *, per_slot: int = 4) -> Catalog:
        """Every GPU type in every data center and both clouds, ``per_slot`` GPUs each."""
        catalog = cls()
        for gpu in catalog.gpus:
            for dc in catalog.datacenters:
                for cloud in CLOUDS:
                    catalog.stock[(gpu, dc, cloud)] = per_slot
        return catalog

    def set_stock(self, gpu_id: str, datacenter_id: str, cloud: str, count: int) -> None:
        if gpu_id not in self.gpus or datacenter_id not in self.datacenters:
            raise KeyError(f"unknown GPU type or data center: {gpu_id!r} / {datacenter_id!r}")
        self.stock[(gpu_id, datacenter_id, cloud)] = max(0, count)

    def clear_stock(self) -> None:
        self.stock.clear()

    def free(self, gpu_id: str, datacenter_id: str, cloud: str) -> int:
        return self.stock.get((gpu_id, datacenter_id, cloud), 0)

    def take(self, gpu_id: str, cloud: str, count: int, candidates: list[str]) -> str | None:
        """Reserve ``count`` GPUs in the first candidate DC (all DCs if none) that has them."""
        for dc in candidates or list(self.datacenters):
            if self.free(gpu_id, dc, cloud) >= count:
                self.stock[(gpu_id, dc, cloud)] -= count
                return dc
        return None

    def give_back(self, gpu_id: str, datacenter_id: str, cloud: str, count: int) -> None:
        key = (gpu_id, datacenter_id, cloud)
        self.stock[key] = self.stock.get(key, 0) + count

    # --- JSON as the catalog endpoints answer it -----------------------------------------

    def gpu_json(
        self,
        gpu: GpuType,
        *,
        availability: bool,
        cloud: str = SECURE,
        count: int = 1,
        countries: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": gpu.id,
            "name": gpu.name,
            "pool": gpu.pool,
            "manufacturer": gpu.manufacturer,
            "memory": gpu.memory_gb,
            "secure": any(self._offered(gpu.id, dc, SECURE) for dc in self.datacenters),
            "community": any(self._offered(gpu.id, dc, COMMUNITY) for dc in self.datacenters),
            "price": {"secure": gpu.price_secure, "community": gpu.price_community},
            "maxCount": {"secure": gpu.max_count_secure, "community": gpu.max_count_community},
        }
        if not availability:
            return body
        dcs = [
            dc
            for dc in self.datacenters.values()
            if self._offered(gpu.id, dc.id, cloud) and (not countries or dc.country in countries)
        ]
        per_dc = [
            {
                "id": dc.id,
                "name": dc.id,
                "availability": level(self.free(gpu.id, dc.id, cloud), count),
            }
            for dc in dcs
        ]
        best = max((self.free(gpu.id, dc.id, cloud) for dc in dcs), default=0)
        body["availability"] = level(best, count) if count <= gpu.max_count(cloud) else "NONE"
        available = [entry for entry in per_dc if entry["availability"] != "NONE"]
        if available and count <= gpu.max_count(cloud):
            body["dataCenters"] = per_dc
        if gpu.cuda_versions:
            body["cudaVersions"] = [
                {"version": version, "available": body["availability"] != "NONE"}
                for version in gpu.cuda_versions
            ]
        return body

    def datacenter_json(self, dc: DataCenter, *, gpu_availability: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": dc.id,
            "name": dc.id,  # v2 answers name == id (measured)
            "region": dc.region,
            "globalNetwork": dc.global_network,
            "networkVolumeTypes": ["STANDARD"],
            "compliance": list(dc.compliance),
        }
        if gpu_availability:
            offered = [
                {
                    "id": gpu.id,
                    "name": gpu.name,
                    "availability": level(
                        max(self.free(gpu.id, dc.id, c) for c in CLOUDS),
                    ),
                }
                for gpu in self.gpus.values()
                if any(self._offered(gpu.id, dc.id, c) for c in CLOUDS)
            ]
            if offered:
                body["gpuAvailability"] = offered
        return body

    def _offered(self, gpu_id: str, datacenter_id: str, cloud: str) -> bool:
        return (gpu_id, datacenter_id, cloud) in self.stock
