"""Offer choice and annotation parsing, as properties over generated catalogs and annotations."""

from __future__ import annotations

from typing import Any

import pytest
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.providers.runpod.conftest import make_provider
from vk_trio.providers.base import InvalidAnnotation, InvalidSpec, Port, Requirements
from vk_trio.providers.runpod import annotations as ann
from vk_trio.providers.runpod.annotations import allowed_datacenters, parse
from vk_trio.providers.runpod.models import DataCenterAvailability, GpuMaxCount, GpuPrice, GpuType
from vk_trio.providers.runpod.offers import Candidate, choose, price_cap
from vk_trio.sim.runpod import RunPodSim

DCS = ["EU-RO-1", "EU-SE-1", "US-TX-3", "US-KS-2", "CA-MTL-1"]
LEVELS = ["NONE", "LOW", "MEDIUM", "HIGH"]
_prices = st.floats(min_value=0.01, max_value=5, allow_nan=False).map(lambda p: round(p, 2))


@st.composite
def gpu_types(draw: st.DrawFn, index: int) -> GpuType:
    return GpuType(
        id=f"GPU {index}",
        name=f"g{index}",
        memory=draw(st.sampled_from([8, 16, 24, 48, 80])),
        secure=draw(st.booleans()),
        community=draw(st.booleans()),
        price=GpuPrice(secure=draw(_prices), community=draw(_prices)),
        max_count=GpuMaxCount(secure=draw(st.integers(1, 8)), community=draw(st.integers(1, 4))),
        availability="LOW",
        data_centers=[
            DataCenterAvailability(id=dc, availability=draw(st.sampled_from(LEVELS)))
            for dc in draw(st.lists(st.sampled_from(DCS), unique=True, max_size=4))
        ],
    )


catalogs = st.integers(0, 6).flatmap(lambda n: st.tuples(*[gpu_types(i) for i in range(n)]))
needs = st.builds(
    Requirements,
    gpu_count=st.integers(1, 4),
    gpu_memory_gb=st.none() | st.sampled_from([8.0, 20.0, 40.0]),
    max_price_per_hour=st.none() | _prices,
)
dc_lists = st.lists(st.sampled_from(DCS), unique=True, max_size=3).map(tuple)


def feasible(
    gpus: tuple[GpuType, ...], need: Requirements, cloud: str, dcs: tuple[str, ...],
    node_cap: float | None,
) -> set[tuple[str, str, float]]:  # fmt: skip
    """Brute force: every (gpu, dc, price) a careful human would accept. The price is the whole
    pod's while it runs: the GPUs and the default 20 GB container disk at $0.10 per GB-month."""
    cap = price_cap(need, max_gpu_price=node_cap, gpu_count=need.gpu_count)
    out = set()
    for gpu in gpus:
        secure = cloud == "SECURE"
        unit = gpu.price.secure if secure else gpu.price.community
        total = round(unit * need.gpu_count + 20 * 0.10 / 730, 6)
        if not (gpu.secure if secure else gpu.community):
            continue
        if need.gpu_count > (gpu.max_count.secure if secure else gpu.max_count.community):
            continue
        if gpu.memory < (need.gpu_memory_gb or 0) or (cap is not None and total > cap):
            continue
        for dc in gpu.data_centers or []:
            if dc.availability != "NONE" and (not dcs or dc.id in dcs):
                out.add((gpu.id, dc.id, total))
    return out


@settings(max_examples=300, deadline=None)
@given(
    gpus=catalogs,
    need=needs,
    cloud=st.sampled_from(["SECURE", "COMMUNITY"]),
    node_dcs=dc_lists,
    pod_dcs=dc_lists,
    node_cap=st.none() | _prices,
)
def test_offers_are_exactly_the_feasible_candidates_cheapest_first_under_the_cap(
    *,
    gpus: tuple[GpuType, ...],
    need: Requirements,
    cloud: str,
    node_dcs: tuple[str, ...],
    pod_dcs: tuple[str, ...],
    node_cap: float | None,
) -> None:
    try:
        dcs = allowed_datacenters(node_dcs, pod_dcs)
    except InvalidSpec:
        assert node_dcs and pod_dcs and not set(node_dcs) & set(pod_dcs)
        return
    options = ann.RunPodOptions(cloud_type=cloud, datacenter_ids=pod_dcs)
    offers = choose(gpus, need, options, datacenters=dcs, max_gpu_price=node_cap)
    prices = [offer.price_per_hour for offer in offers]
    assert prices == sorted(prices)
    cap = price_cap(need, max_gpu_price=node_cap, gpu_count=need.gpu_count)
    assert cap is None or all(price <= cap for price in prices)
    got = {(o.gpu_type, o.location, o.price_per_hour) for o in offers}
    assert got == feasible(gpus, need, cloud, dcs, node_cap)
    for offer in offers:
        assert offer.location in (dcs or DCS)
        assert not node_dcs or offer.location in node_dcs
        assert not pod_dcs or offer.location in pod_dcs
        candidate = Candidate.parse(offer.offer_id)
        assert candidate is not None
        assert (candidate.gpu_id, candidate.datacenter, candidate.cloud) == (
            offer.gpu_type,
            offer.location,
            cloud,
        )


def test_datacenter_allow_lists_follow_seed_001() -> None:
    assert allowed_datacenters((), ()) == ()
    assert allowed_datacenters((), ("EU-RO-1",)) == ("EU-RO-1",)
    assert allowed_datacenters(("eu-ro-1", "US-TX-3"), ()) == ("EU-RO-1", "US-TX-3")
    assert allowed_datacenters(("EU-RO-1", "US-TX-3"), ("US-TX-3", "CA-MTL-1")) == ("US-TX-3",)
    with pytest.raises(InvalidSpec, match="none of this node's data centers"):
        allowed_datacenters(("EU-RO-1",), ("US-TX-3",))


async def test_offers_from_the_simulated_catalog_respect_node_and_pod_lists(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider(sim, datacenter_ids=["EU-RO-1", "US-TX-3"], max_gpu_price=0.5)
    try:
        pod_dcs = {"runpod.io/datacenter-ids": "US-TX-3,CA-MTL-1"}
        offers = await provider.offers(Requirements(gpu_count=1, annotations=pod_dcs))
        assert offers and {o.location for o in offers} == {"US-TX-3"}
        assert max(o.price_per_hour for o in offers) <= 0.5
        assert offers[0].gpu_type == "NVIDIA RTX 2000 Ada Generation"
        big = await provider.offers(
            Requirements(gpu_count=2, annotations={"runpod.io/required-gpu-memory": "48"})
        )
        assert big == []  # 48 GB GPUs cost more than 2 x $0.50
        with pytest.raises(InvalidSpec):
            await provider.offers(
                Requirements(annotations={"runpod.io/datacenter-ids": "CA-MTL-1"})
            )
    finally:
        await provider.aclose()


# --- annotations ------------------------------------------------------------------------------

KEYS = [
    ann.REQUIRED_GPU_MEMORY,
    ann.CLOUD_TYPE,
    ann.DATACENTER_IDS,
    ann.PORTS,
    ann.TEMPLATE_ID,
    ann.REGISTRY_AUTH_ID,
    ann.CONTAINER_DISK_GB,
    ann.GPU_TYPE_IDS,
    ann.ALLOWED_CUDA_VERSIONS,
    "runpod.io/pod-id",
    "example.com/other",
]
_values = st.text(max_size=20) | st.sampled_from(
    ["24", "1e9", "nan", "inf", "-3", "0", "8080/tcp,22", "99999/http", "abc", "SECURE", "12.8"]
)


@settings(max_examples=500, deadline=None)
@given(annotations=st.dictionaries(st.sampled_from(KEYS), _values, max_size=6))
def test_annotation_parsing_never_raises_anything_but_invalid_annotation(
    annotations: dict[str, str],
) -> None:
    try:
        options = parse(annotations)
    except InvalidAnnotation as exc:
        assert str(exc).startswith("runpod.io/")
        return
    assert options.cloud_type in ("SECURE", "COMMUNITY")
    assert options.required_gpu_memory_gb is None or options.required_gpu_memory_gb > 0
    assert all(1 <= p.number <= 65535 for p in options.ports or ())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (ann.REQUIRED_GPU_MEMORY, "abc", "is not a GPU memory size in GB"),
        (ann.REQUIRED_GPU_MEMORY, "-4", "is not a GPU memory size in GB"),
        (ann.CLOUD_TYPE, "ALL", "is not SECURE or COMMUNITY"),
        (ann.PORTS, "8080/udp", "is not PORT/tcp or PORT/http"),
        (ann.PORTS, "70000/tcp", "is not PORT/tcp or PORT/http"),
        (ann.CONTAINER_DISK_GB, "2.5", "is not a whole number of GB"),
        (ann.DATACENTER_IDS, "EU RO 1", "is not a data center id"),
        (ann.ALLOWED_CUDA_VERSIONS, "12", "is not a MAJOR.MINOR version"),
    ],
)
def test_invalid_annotation_values_name_the_annotation_and_the_fix(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidAnnotation, match=message) as caught:
        parse({key: value})
    assert str(caught.value).startswith(key)
    assert caught.value.reason == "InvalidAnnotation"


def test_annotations_parse_to_options() -> None:
    options: Any = parse(
        {
            ann.REQUIRED_GPU_MEMORY: "24",
            ann.CLOUD_TYPE: "community",
            ann.DATACENTER_IDS: "eu-ro-1, US-TX-3,",
            ann.PORTS: "8080/tcp, 9000/http, 80",
            ann.GPU_TYPE_IDS: "NVIDIA GeForce RTX 4090,NVIDIA L40S",
            "runpod.io/pod-id": "written-by-the-agent",
        }
    )
    assert options.required_gpu_memory_gb == 24
    assert options.cloud_type == "COMMUNITY"
    assert options.datacenter_ids == ("EU-RO-1", "US-TX-3")
    assert options.ports == (
        Port(number=8080, protocol="tcp"),
        Port(number=9000, protocol="http"),
        Port(number=80, protocol="http"),
    )
    assert options.gpu_type_ids == ("NVIDIA GeForce RTX 4090", "NVIDIA L40S")
    assert parse({}) == ann.RunPodOptions()
