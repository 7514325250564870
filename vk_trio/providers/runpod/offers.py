"""Offer choice: which (GPU type, data center) candidates can run a pod, cheapest first.

v2 places exactly one GPU type per create and never searches for capacity (createPod
description), so an offer is one (GPU type, data center) pair read from the catalog with
``include=AVAILABILITY&product=POD``: one create per offer, and the router walks the list. A
candidate qualifies when the GPU type is sold in the pod's cloud, has enough memory per GPU,
allows the GPU count, is in stock in an allowed data center, and its price for the whole pod
stays under the cap: the lower of the node's ``--max-gpu-price`` (per GPU-hour, so times the
count) and the pod's own cap. The price of the whole pod is what it bills per hour while it
runs: its GPUs at the catalog price, plus its container disk at RunPod's $0.10 per GB-month
(docs.runpod.io/pods/storage), as Vast.ai's ``dph_total`` includes the disk rented there, so
the two clouds' offers compare. This module is pure; ``offers()`` in provider.py feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vk_trio.decoding import ascii_digits
from vk_trio.providers.base import Offer, Requirements
from vk_trio.providers.runpod.annotations import RunPodOptions, container_disk_gb
from vk_trio.providers.runpod.models import GpuType

PROVIDER = "runpod"
DISK_PER_GB_HOUR = 0.10 / 730  # container disk while the pod runs: $0.10 per GB-month
ANY_DATACENTER = "*"
_RANK = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """What an offer id stands for: the create parameters of one candidate."""

    cloud: str
    datacenter: str  # ANY_DATACENTER: let RunPod's scheduler pick among the allowed ones
    gpu_id: str
    count: int

    @property
    def offer_id(self) -> str:
        return f"{PROVIDER}|{self.cloud}|{self.datacenter}|{self.count}|{self.gpu_id}"

    @classmethod
    def parse(cls, offer_id: str) -> Candidate | None:
        parts = offer_id.split("|", 4)
        if len(parts) != 5 or parts[0] != PROVIDER or not parts[4]:
            return None
        if not ascii_digits(parts[3]) or len(parts[3]) > 4:  # "²" is a digit to str.isdigit
            return None
        return cls(cloud=parts[1], datacenter=parts[2], gpu_id=parts[4], count=int(parts[3]))


def price_cap(need: Requirements, *, max_gpu_price: float | None, gpu_count: int) -> float | None:
    """The most the whole pod may cost per hour (None: no cap)."""
    caps = [c for c in (need.max_price_per_hour,) if c is not None]
    if max_gpu_price is not None:
        caps.append(max_gpu_price * gpu_count)
    return min(caps, default=None)


def choose(
    gpus: Sequence[GpuType],
    need: Requirements,
    options: RunPodOptions,
    *,
    datacenters: Sequence[str],
    max_gpu_price: float | None = None,
) -> list[Offer]:
    """Feasible offers, cheapest first (then better stock, then preferred type order).

    ``datacenters`` is the allowed set (already the node ∩ pod intersection); empty = any.
    """
    count = max(1, need.gpu_count)
    cloud = options.cloud_type
    memory = options.required_gpu_memory_gb or need.gpu_memory_gb or 0.0
    cap = price_cap(need, max_gpu_price=max_gpu_price, gpu_count=count)
    preferred = options.gpu_type_ids
    allowed = set(datacenters)
    disk_hour = container_disk_gb(options, need.disk_gb) * DISK_PER_GB_HOUR
    found: list[tuple[tuple[float, int, int, str, str], Offer]] = []
    for gpu in gpus:
        sold = gpu.secure if cloud == "SECURE" else gpu.community
        unit = gpu.price.secure if cloud == "SECURE" else gpu.price.community
        max_count = gpu.max_count.secure if cloud == "SECURE" else gpu.max_count.community
        if not sold or unit <= 0 or gpu.memory < memory or count > max_count:
            continue
        if preferred and gpu.id not in preferred:
            continue
        total = round(unit * count + disk_hour, 6)
        if cap is not None and total > cap:
            continue
        places: list[tuple[str, str]] = []
        if gpu.data_centers is not None:
            places = [
                (dc.id, dc.availability)
                for dc in gpu.data_centers
                if dc.availability in _RANK and (not allowed or dc.id in allowed)
            ]
        elif gpu.availability in _RANK:
            places = [(ANY_DATACENTER, gpu.availability or "LOW")]
        rank_pref = preferred.index(gpu.id) if preferred else 0
        for dc, level in places:
            candidate = Candidate(cloud=cloud, datacenter=dc, gpu_id=gpu.id, count=count)
            offer = Offer(
                provider=PROVIDER,
                offer_id=candidate.offer_id,
                gpu_type=gpu.id,
                gpu_count=count,
                gpu_memory_gb=float(gpu.memory),
                price_per_hour=total,
                location="" if dc == ANY_DATACENTER else dc,
                cloud_type=cloud,
                details={"availability": level, "gpu_name": gpu.name},
            )
            found.append(((total, _RANK[level], rank_pref, gpu.id, dc), offer))
    found.sort(key=lambda item: item[0])
    return [offer for _, offer in found]


def explain(
    gpus: Sequence[GpuType],
    need: Requirements,
    options: RunPodOptions,
    *,
    datacenters: Sequence[str],
    max_gpu_price: float | None = None,
) -> str:
    """Why ``choose`` found nothing: each constraint in the order ``choose`` applies them, with
    how many GPU types are left after it, up to the one that ruled out the last of them."""
    count = max(1, need.gpu_count)
    secure = options.cloud_type == "SECURE"
    memory = options.required_gpu_memory_gb or need.gpu_memory_gb or 0.0
    cap = price_cap(need, max_gpu_price=max_gpu_price, gpu_count=count)
    allowed = set(datacenters)

    def unit(gpu: GpuType) -> float:
        return gpu.price.secure if secure else gpu.price.community

    def in_stock(gpu: GpuType) -> bool:
        if gpu.data_centers is not None:
            return any(
                dc.availability in _RANK and (not allowed or dc.id in allowed)
                for dc in gpu.data_centers
            )
        return gpu.availability in _RANK and not allowed

    stages: list[tuple[str, Callable[[GpuType], bool]]] = [
        (
            f"sold in the {options.cloud_type} cloud",
            lambda g: (g.secure if secure else g.community) and unit(g) > 0,
        ),
        (f">= {memory:g} GB per GPU", lambda g: g.memory >= memory),
        (
            f"{count} allowed per pod",
            lambda g: count <= (g.max_count.secure if secure else g.max_count.community),
        ),
    ]
    if options.gpu_type_ids:
        types = ", ".join(options.gpu_type_ids)
        stages.append((f"one of {types}", lambda g: g.id in options.gpu_type_ids))
    if cap is not None:
        stages.append((f"at most ${cap:g}/h", lambda g: unit(g) * count <= cap))
    where = ", ".join(datacenters) or "any data center"
    stages.append((f"in stock in {where}", in_stock))
    left = list(gpus)
    said = []
    for words, test in stages:
        left = [gpu for gpu in left if test(gpu)]
        said.append(f"{words}: {len(left)}")
        if not left:
            break
    return f"no RunPod offer for {count} GPU(s); of {len(gpus)} GPU types, " + ", ".join(said)
