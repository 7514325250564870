"""From what a pod needs (and its ``vast.ai/*`` annotations) to Vast.ai's offer search query.

The annotations are the ones users of the Python Vast.ai kubelet already write, and they keep
their meaning: ``vast.ai/gpu-type`` and ``vast.ai/gpu-fallbacks`` (every name is searched, not
only the first three), ``vast.ai/price-max`` ($/h for the instance), ``vast.ai/region``
(regions.py), ``vast.ai/memory`` (GPU memory per GPU, e.g. ``"12GB"``) and ``vast.ai/disk``
(``"50GB"``). That kubelet sent invented flat query parameters the API ignores; this module
builds the real JSON filter document instead, in the API's units: GPU names with spaces,
``gpu_ram`` in MB (Vast.ai's MB are MiB: an RTX 4090 reports 24564 for 24 GiB, so the floor is
2% under the asked size), ``disk_space`` in GB with ``allocated_storage`` set to the same disk so
that ``dph_total`` prices the storage we will rent.

**Price caps.** Vast.ai prices an instance by ``dph_total``: its GPUs plus the disk we rent, per
hour, which is what the bill grows by. Every cap applies to that one number, and the lowest
wins: ``vast.ai/price-max``, the pod's own cap, the node's whole-instance cap, and the node's
``--max-gpu-price``, which is per GPU (as for RunPod) and so caps an instance at that price times
the pod's GPU count.

**Disk.** The disk rented is the largest of ``vast.ai/disk`` and the pod's ephemeral-storage, at
least Vast.ai's minimum, and never more than the node's ``--max-disk-gb``: an annotation above it
is an ``InvalidAnnotation`` (the pod waits for a fix), a pod spec above it an ``InvalidSpec``.

Everything here is pure: parsing fails with ``InvalidAnnotation`` (the pod waits for a fix), or
``InvalidSpec`` for a disk the pod spec itself asks beyond the node's maximum, never with
anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from vk_trio import decoding
from vk_trio.providers.base import InvalidAnnotation, InvalidSpec, Requirements
from vk_trio.providers.vastai.regions import RegionError, countries

PREFIX = "vast.ai/"
GPU_TYPE = PREFIX + "gpu-type"
GPU_FALLBACKS = PREFIX + "gpu-fallbacks"
PRICE_MAX = PREFIX + "price-max"
REGION = PREFIX + "region"
MEMORY = PREFIX + "memory"
DISK = PREFIX + "disk"

MIN_DISK_GB = 8  # Vast.ai's smallest disk
GPU_RAM_TOLERANCE = 0.98  # cards report slightly less than their nominal size
MAX_BYTES = 2**60
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$")
_UNITS = {
    "": 10**9,  # a bare number is GB, as in the seed's examples
    "g": 10**9,
    "gb": 10**9,
    "gi": 2**30,
    "gib": 2**30,
    "m": 10**6,
    "mb": 10**6,
    "mi": 2**20,
    "mib": 2**20,
    "t": 10**12,
    "tb": 10**12,
    "ti": 2**40,
    "tib": 2**40,
}
_PRICE = re.compile(
    r"^\s*\$?\s*(\d+(?:\.\d+)?|\.\d+)\s*(?:(?:usd|\$)?\s*(?:/\s*h(?:r|our)?)?)\s*$", re.I
)


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The node's floors and defaults (constructor arguments of the provider)."""

    max_price_per_hour: float | None = None  # $/h for the whole instance
    max_gpu_price: float | None = None  # $/h per GPU: the instance's cap is this times its GPUs
    min_reliability: float = 0.90
    min_direct_ports: int = 1
    default_disk_gb: float = 20.0
    max_disk_gb: float | None = None  # --max-disk-gb: the most disk one pod may rent
    limit: int = 64


@dataclass(frozen=True, kw_only=True)
class Selection:
    """What the pod asks of an offer, in Vast.ai's units."""

    gpu_names: tuple[str, ...] = ()
    gpu_count: int = 1
    gpu_ram_mb: int | None = None  # per GPU (MiB)
    max_price: float | None = None  # $/h, whole instance
    countries: tuple[str, ...] | None = None  # None: anywhere
    disk_gb: float = 20.0
    cpu_cores: float | None = None
    memory_mb: int | None = None


def size_bytes(value: str, *, annotation: str) -> int:
    """``"12GB"``, ``"12 GiB"``, ``"12000MB"``, ``"12"`` (GB) as bytes."""
    match = _SIZE.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise InvalidAnnotation(
            f"{annotation}: {value!r} is not a size such as '12GB', '12 GiB' or '12000MB'"
        )
    amount = float(match.group(1)) * _UNITS[unit]
    if not 0 < amount <= MAX_BYTES:
        raise InvalidAnnotation(f"{annotation}: {value!r} must be more than zero and realistic")
    return math.ceil(amount)


def price(value: str, *, annotation: str = PRICE_MAX) -> float:
    """``"0.30"``, ``"$0.30"``, ``"0.30/h"`` as dollars per hour (more than zero)."""
    match = _PRICE.match(value)
    if match is None:
        raise InvalidAnnotation(f"{annotation}: {value!r} is not a price in $/h such as '0.30'")
    amount = float(match.group(1))
    if not 0 < amount < 10_000:
        raise InvalidAnnotation(f"{annotation}: {value!r} must be more than zero")
    return amount


def gpu_names(annotations: Mapping[str, str]) -> tuple[str, ...]:
    """The GPU type and its fallbacks as Vast.ai spells them (spaces, not underscores)."""
    raw = [annotations.get(GPU_TYPE, ""), *annotations.get(GPU_FALLBACKS, "").split(",")]
    names: list[str] = []
    for item in raw:
        name = " ".join(item.replace("_", " ").split())
        if name and name not in names:
            names.append(name)
    if GPU_TYPE in annotations and not annotations[GPU_TYPE].strip():
        raise InvalidAnnotation(f"{GPU_TYPE}: empty; name a GPU such as 'RTX 4090'")
    return tuple(names)


def select(need: Requirements, policy: Policy) -> Selection:
    """Parse the annotations (``InvalidAnnotation`` when one is wrong) and combine the caps."""
    notes = need.annotations
    gpus = max(1, need.gpu_count)
    caps = [c for c in (policy.max_price_per_hour, need.max_price_per_hour) if c is not None]
    if policy.max_gpu_price is not None:
        caps.append(policy.max_gpu_price * gpus)
    if PRICE_MAX in notes:
        caps.append(price(notes[PRICE_MAX]))
    try:
        where = countries(notes.get(REGION, ""))
    except RegionError as exc:
        raise InvalidAnnotation(f"{REGION}: {exc}") from None
    ram_bytes = [size_bytes(notes[MEMORY], annotation=MEMORY)] if MEMORY in notes else []
    if need.gpu_memory_gb:
        ram_bytes.append(math.ceil(need.gpu_memory_gb * 10**9))
    disks = [size_bytes(notes[DISK], annotation=DISK) / 10**9] if DISK in notes else []
    if need.disk_gb:
        disks.append(need.disk_gb)
    cap = policy.max_disk_gb
    if cap is not None and DISK in notes and disks[0] > cap:
        raise InvalidAnnotation(
            f"{DISK}: {notes[DISK]!r} is more disk than this node rents for one pod "
            f"({cap:g} GB, --max-disk-gb)"
        )
    if cap is not None and need.disk_gb and need.disk_gb > cap:
        raise InvalidSpec(
            f"ephemeral-storage ({need.disk_gb:g} GB) is more disk than this node rents for one "
            f"pod ({cap:g} GB, --max-disk-gb)"
        )
    return Selection(
        gpu_names=gpu_names(notes),
        gpu_count=gpus,
        gpu_ram_mb=math.floor(max(ram_bytes) / 2**20 * GPU_RAM_TOLERANCE) if ram_bytes else None,
        max_price=min(caps) if caps else None,
        countries=where,
        disk_gb=max(MIN_DISK_GB, math.ceil(max(disks) if disks else policy.default_disk_gb)),
        cpu_cores=need.cpu_millis / 1000 if need.cpu_millis else None,
        memory_mb=need.memory_mb or None,
    )


def search_query(selection: Selection, policy: Policy) -> dict[str, Any]:
    """The body of ``POST /api/v0/bundles/``: cheapest first, only what can run the pod."""
    query: dict[str, Any] = {
        "verified": {"eq": True},
        "rentable": {"eq": True},
        "rented": {"eq": False},
        "num_gpus": {"eq": selection.gpu_count},
        "disk_space": {"gte": selection.disk_gb},
        "reliability2": {"gte": policy.min_reliability},
        "direct_port_count": {"gte": policy.min_direct_ports},
    }
    if selection.gpu_names:
        query["gpu_name"] = {"in": list(selection.gpu_names)}
    if selection.gpu_ram_mb is not None:
        query["gpu_ram"] = {"gte": selection.gpu_ram_mb}
    if selection.max_price is not None:
        query["dph_total"] = {"lte": selection.max_price}
    if selection.countries is not None:
        query["geolocation"] = {"in": list(selection.countries)}
    if selection.cpu_cores is not None:
        query["cpu_cores_effective"] = {"gte": selection.cpu_cores}
    if selection.memory_mb is not None:
        query["cpu_ram"] = {"gte": selection.memory_mb}
    query |= {
        "order": [["dph_total", "asc"]],
        "type": "on-demand",
        "limit": policy.limit,
        "allocated_storage": selection.disk_gb,
    }
    return query


MAX_LIMIT = 1000  # offers one search asks for when it serves many waiting pods


def union_query(
    selections: Iterable[Selection], policy: Policy, *, wanted: int = 0
) -> dict[str, Any]:
    """One search for several pods' selections (the same disk): each filter at its loosest,
    so every offer any of them could use is found; each pod checks the offers against its own
    selection (``fits``). ``wanted``: how many pods wait, so the search returns enough."""
    chosen = list(dict.fromkeys(selections))
    if not chosen:
        raise ValueError("a search needs at least one selection")
    query = search_query(chosen[0], policy)
    if len(chosen) > 1:
        query.pop("gpu_name", None)
        query.pop("gpu_ram", None)
        query.pop("dph_total", None)
        query.pop("geolocation", None)
        query.pop("cpu_cores_effective", None)
        query.pop("cpu_ram", None)
        counts = sorted({s.gpu_count for s in chosen})
        query["num_gpus"] = {"eq": counts[0]} if len(counts) == 1 else {"in": counts}
        query["disk_space"] = {"gte": min(s.disk_gb for s in chosen)}
        if all(s.gpu_names for s in chosen):
            query["gpu_name"] = {"in": sorted({n for s in chosen for n in s.gpu_names})}
        loosest: list[tuple[str, str, list[float | int | None]]] = [
            ("gpu_ram", "gte", [s.gpu_ram_mb for s in chosen]),
            ("dph_total", "lte", [s.max_price for s in chosen]),
            ("cpu_cores_effective", "gte", [s.cpu_cores for s in chosen]),
            ("cpu_ram", "gte", [s.memory_mb for s in chosen]),
        ]
        for name, op, values in loosest:
            if all(v is not None for v in values):
                known = [v for v in values if v is not None]
                query[name] = {op: min(known) if op == "gte" else max(known)}
        if all(s.countries is not None for s in chosen):
            query["geolocation"] = {"in": sorted({c for s in chosen for c in s.countries or ()})}
    query["limit"] = min(MAX_LIMIT, max(policy.limit, 2 * wanted))
    return query


Cosmetic = int | float | Annotated[str, msgspec.Meta(max_length=256)] | None


class OfferRow(msgspec.Struct, kw_only=True):
    """One row of an offer search, as far as vk-trio reads it, within bounds: a number that is
    text, a list, ``NaN`` or out of range makes the row no offer (``read`` raises
    ``InvalidInput``), never a crash of the search."""

    id: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    dph_total: Annotated[float, msgspec.Meta(ge=0, le=1e6)]
    gpu_name: Annotated[str, msgspec.Meta(max_length=256)]
    num_gpus: Annotated[int, msgspec.Meta(ge=0, le=1024)]
    gpu_ram: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None  # MB per GPU
    reliability2: Annotated[float, msgspec.Meta(ge=0, le=10)] | None = None
    direct_port_count: Annotated[int, msgspec.Meta(ge=0, le=2**20)] | None = None
    geolocation: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    cpu_cores: Annotated[float, msgspec.Meta(ge=0, le=2**20)] | None = None
    cpu_cores_effective: Annotated[float, msgspec.Meta(ge=0, le=2**20)] | None = None
    cpu_ram: Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None = None  # MB
    disk_space: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None  # GB
    machine_id: Cosmetic = None
    inet_down: Cosmetic = None
    cuda_max_good: Cosmetic = None
    hosting_type: Cosmetic = None

    @classmethod
    def read(cls, row: Mapping[str, Any]) -> OfferRow:
        offer: OfferRow = decoding.convert(
            row, cls, what=f"Vast.ai offer {row.get('id')!r:.40}", strict=False
        )
        return offer

    # null reads as "unknown": no GPU RAM, no reliability, no direct ports, no location

    @property
    def ram_mb(self) -> float:
        return self.gpu_ram or 0.0

    @property
    def reliability(self) -> float:
        return self.reliability2 or 0.0

    @property
    def direct_ports(self) -> int:
        return self.direct_port_count or 0

    @property
    def location(self) -> str:
        return self.geolocation or ""


def fits(offer: OfferRow, selection: Selection) -> bool:
    """What a search shared with other pods (union_query) may not have filtered for this one,
    and what the server cannot filter: the instance's share of the machine's RAM."""
    if selection.max_price is not None and offer.dph_total > selection.max_price:
        return False
    if (offer.disk_space or 0.0) < selection.disk_gb:
        return False
    if selection.cpu_cores is not None and (offer.cpu_cores_effective or 0.0) < selection.cpu_cores:
        return False
    if selection.memory_mb is None:
        return True
    cores, effective, ram = offer.cpu_cores, offer.cpu_cores_effective, offer.cpu_ram
    if not cores or not effective or not ram:
        return False  # cpu_cores can be null; such offers cannot be judged (gpuhunt skips them)
    return ram * effective / cores >= selection.memory_mb
