"""The router's choice, as a property: for random catalogs of both clouds, random annotations
(neutral and the seeds') and random caps, the instance rented is on the cheapest feasible offer
a brute-force oracle finds, ties going to the cloud named first, and no offer the router lists
breaks any cap.

Both simulated clouds serve the random catalogs over real HTTP, and the real RunPod and Vast.ai
providers ask them through the Router and placement.py, exactly as on a node. The oracle reads
the catalogs directly and applies the documented rules (README, "Both clouds") in the plainest
way: every GPU in every data center, every offer, every cap.
"""

from __future__ import annotations

import dataclasses
import math
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx2
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.runpod.support import API_KEY as RUNPOD_KEY
from tests.sim.vastai.support import API_KEY as VAST_KEY
from vk_trio.providers import gpu_models
from vk_trio.providers.base import InstanceSpec, NoCapacity, Offer, Provider, Requirements
from vk_trio.providers.images import ImageConfigReader
from vk_trio.providers.placement import place
from vk_trio.providers.router import Router
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.providers.runpod.client import RunPodClient
from vk_trio.providers.vastai import VastProvider
from vk_trio.sim.runpod import GpuType, RateLimiter, RunPodSim
from vk_trio.sim.runpod.catalog import DEFAULT_DATACENTERS
from vk_trio.sim.vastai import Marketplace, RateLimits, SimOffer, VastSim

DCS = [dc.id for dc in DEFAULT_DATACENTERS]
PLACES = {"US": "Texas, US", "CA": "Quebec, CA", "DE": "Bavaria, DE", "JP": "Tokyo, JP"}
DISK_GB = 20  # both clouds rent this disk when the pod says nothing
RUNPOD_DISK_HOUR = DISK_GB * 0.10 / 730
MODELS = [m for m in gpu_models.MODELS if m.runpod and m.vastai and m.memory_gb <= 80]
prices = st.integers(5, 150).map(lambda cents: cents / 100)


@dataclass(frozen=True)
class RunPodGpu:
    model: gpu_models.GpuModel
    price: float
    stock: dict[str, int]  # data center → free GPUs (SECURE)


@dataclass(frozen=True)
class VastOffer:
    model: gpu_models.GpuModel
    name: str
    price: float  # dph_base
    country: str
    reliability: float


@dataclass(frozen=True)
class Case:
    runpod: list[RunPodGpu]
    vast: list[VastOffer]
    notes: dict[str, str] = field(default_factory=dict)
    node_gpu_cap: float | None = None
    order: tuple[str, ...] = ("runpod", "vastai")


runpod_gpus = st.builds(
    RunPodGpu,
    model=st.sampled_from(MODELS),
    price=prices,
    stock=st.dictionaries(st.sampled_from(DCS), st.integers(0, 2), max_size=3),
)
vast_offers = st.sampled_from(MODELS).flatmap(
    lambda model: st.builds(
        VastOffer,
        model=st.just(model),
        name=st.sampled_from(model.vastai),
        price=prices,
        country=st.sampled_from(sorted(PLACES)),
        reliability=st.sampled_from([0.99, 0.95, 0.5]),
    )
)


@st.composite
def pod_annotations(draw: st.DrawFn) -> dict[str, str]:
    notes: dict[str, str] = {}
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True))
        notes["vk-trio.io/gpu-types"] = ",".join(m.name for m in chosen)
    if draw(st.booleans()):
        notes["vk-trio.io/providers"] = draw(st.sampled_from(["runpod", "vastai", "vastai,runpod"]))
    if draw(st.booleans()):
        notes["vk-trio.io/max-price"] = f"{draw(prices):.2f}"
    if draw(st.booleans()):
        notes["vk-trio.io/gpu-memory"] = str(draw(st.sampled_from([16, 24, 48])))
    if draw(st.booleans()):
        notes["runpod.io/datacenter-ids"] = ",".join(
            draw(st.lists(st.sampled_from(DCS), min_size=1, max_size=3, unique=True))
        )
    if draw(st.booleans()):
        notes["vast.ai/region"] = ",".join(
            draw(st.lists(st.sampled_from(sorted(PLACES)), min_size=1, max_size=2, unique=True))
        )
    if draw(st.booleans()):
        notes["vast.ai/price-max"] = f"{draw(prices):.2f}"
    return notes


cases = st.builds(
    Case,
    runpod=st.lists(runpod_gpus, max_size=4, unique_by=lambda g: g.model.runpod[0]),
    vast=st.lists(vast_offers, max_size=5),
    notes=pod_annotations(),
    node_gpu_cap=st.none() | prices,
    order=st.sampled_from([("runpod", "vastai"), ("vastai", "runpod")]),
)


# --- the oracle --------------------------------------------------------------------------------


def candidates(case: Case) -> list[tuple[float, str]]:
    """Every (price, cloud) a careful human would accept for the pod, by brute force."""
    notes = case.notes
    wished = [gpu_models.lookup(n) for n in notes.get("vk-trio.io/gpu-types", "").split(",") if n]
    clouds = notes.get("vk-trio.io/providers", "runpod,vastai").split(",")
    caps = [float(notes["vk-trio.io/max-price"])] if "vk-trio.io/max-price" in notes else []
    if case.node_gpu_cap is not None:
        caps.append(case.node_gpu_cap)  # one GPU: the per-GPU cap is the instance's
    floor = float(notes.get("vk-trio.io/gpu-memory", "0"))
    found: list[tuple[float, str]] = []
    if "runpod" in clouds:
        allowed = notes.get("runpod.io/datacenter-ids", ",".join(DCS)).split(",")
        for gpu in case.runpod:
            price = round(gpu.price + RUNPOD_DISK_HOUR, 6)
            fits = (not wished or gpu.model in wished) and gpu.model.memory_gb >= floor
            in_stock = any(free >= 1 for dc, free in gpu.stock.items() if dc in allowed)
            if fits and in_stock and all(price <= cap for cap in caps):
                found.append((price, "runpod"))
    if "vastai" in clouds:
        countries = notes.get("vast.ai/region", ",".join(PLACES)).split(",")
        vast_caps = caps + (
            [float(notes["vast.ai/price-max"])] if "vast.ai/price-max" in notes else []
        )
        for offer in case.vast:
            price = offer.price + DISK_GB * 0.15 / 720
            ram = _vast_ram(offer)
            fits = (
                (not wished or offer.model in wished)
                and ram / 1024 >= floor * 0.98
                and ram >= math.floor(floor * 10**9 / 2**20 * 0.98)
                and offer.country in countries
                and offer.reliability >= 0.9
            )
            if fits and all(price <= cap for cap in vast_caps):
                found.append((price, "vastai"))
    return found


def _vast_ram(offer: VastOffer) -> int:
    """MiB, as a Vast.ai host reports its card (a little under the nominal GiB)."""
    return int(offer.model.memory_gb * 1024 * 0.9995)


# --- the clouds of one example ---------------------------------------------------------------


def stock_runpod(sim: RunPodSim, case: Case) -> None:
    """The example's RunPod catalog: only its GPUs, its stock (in the simulator's own books)."""
    catalog = sim.catalog
    catalog.gpus.clear()
    catalog.stock.clear()
    for gpu in case.runpod:
        gpu_id = gpu.model.runpod[0]
        catalog.gpus[gpu_id] = GpuType(
            id=gpu_id,
            name=gpu.model.name,
            memory_gb=int(gpu.model.memory_gb),
            price_secure=gpu.price,
            price_community=gpu.price,
        )
        for dc, free in gpu.stock.items():
            catalog.stock[(gpu_id, dc, "SECURE")] = free


def stock_vast(sim: VastSim, case: Case) -> None:
    sim.marketplace = Marketplace(
        [
            SimOffer(
                id=7_000_001 + i,
                machine_id=90_001 + i,
                gpu_name=offer.name,
                gpu_ram=_vast_ram(offer),
                dph_base=offer.price,
                geolocation=PLACES[offer.country],
                reliability2=offer.reliability,
                available=1,
            )
            for i, offer in enumerate(case.vast)
        ]
    )


TLS = ssl.create_default_context()  # once: loading the CA store takes longer than an example


def transport() -> httpx2.AsyncHTTPTransport:
    return httpx2.AsyncHTTPTransport(verify=TLS)


@dataclass
class Clouds:
    runpod: RunPodSim
    vast: VastSim
    runpod_provider: RunPodProvider
    vast_provider: VastProvider


@asynccontextmanager
async def both_clouds() -> AsyncIterator[Clouds]:
    """Both simulated clouds and a provider of each, for one example. (pytest-trio runs each
    Hypothesis example in a trio run of its own and does not set async fixtures up again, so
    the example builds its own; the HTTP clients share one TLS context to keep it quick.)"""
    runpod = RunPodSim(api_key=RUNPOD_KEY, rate_limiter=RateLimiter.per(minute=10**6))
    vast = VastSim(api_keys=[VAST_KEY], rate_limits=RateLimits().scaled(0))
    async with trio.open_nursery() as nursery:
        await nursery.start(runpod.serve)
        await nursery.start(vast.serve)
        found = Clouds(
            runpod=runpod,
            vast=vast,
            runpod_provider=RunPodProvider(
                "prop",
                client=RunPodClient(api_key=RUNPOD_KEY, base_url=runpod.url, transport=transport()),
                images=ImageConfigReader(transport=transport()),
            ),
            vast_provider=VastProvider(
                "prop",
                api_key=VAST_KEY,
                base_url=vast.url,
                intervals={name: 0.0 for name in ("create", "show", "list", "search", "destroy")},
                transport=transport(),
                images=ImageConfigReader(transport=transport()),
            ),
        )
        try:
            yield found
        finally:
            await found.runpod_provider.aclose()
            await found.vast_provider.aclose()
            nursery.cancel_scope.cancel()
    assert vast.violations == [] and vast.rejected == []


async def chosen(case: Case, clouds: Clouds) -> tuple[list[Offer], str | None, float | None]:
    """The router's offers for the pod, and where placement rented (cloud, $/h), or None."""
    stock_runpod(clouds.runpod, case)
    stock_vast(clouds.vast, case)
    clouds.runpod_provider.max_gpu_price = case.node_gpu_cap
    vast = clouds.vast_provider
    vast.policy = dataclasses.replace(vast.policy, max_gpu_price=case.node_gpu_cap)
    named: dict[str, Provider] = {"runpod": clouds.runpod_provider, "vastai": vast}
    router = Router([named[name] for name in case.order])
    spec = InstanceSpec(
        node_name="prop",
        namespace="default",
        pod_name="p",
        pod_uid="3f0c6a9e-2c1d-4b7e-9a51-0d2f6c8e1a10",
        image="example/app:1",
        need=Requirements(annotations=case.notes),
    )
    offers = await router.offers(spec.need)
    try:
        instance = await place(router, spec)
    except NoCapacity:
        return offers, None, None
    await router.delete(instance.instance_id)
    return offers, instance.provider, instance.price_per_hour


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=cases)
async def test_the_rented_offer_is_the_cheapest_feasible_one_and_respects_every_cap(
    case: Case,
) -> None:
    async with both_clouds() as clouds:
        offers, cloud, price = await chosen(case, clouds)
    feasible = [(round(p, 6), k) for p, k in candidates(case)]
    if not feasible:
        assert cloud is None and offers == []
        return
    best = min(p for p, _ in feasible)
    first = next(c for c in case.order if (best, c) in feasible)
    assert cloud == first and price == pytest.approx(best, abs=1e-3)
    assert offers[0].price_per_hour == pytest.approx(best, abs=1e-6)
    allowed = {(round(p, 4), k) for p, k in feasible}
    for offer in offers:  # every listed offer is one the oracle accepts
        assert (round(offer.price_per_hour, 4), offer.provider) in allowed, offer
