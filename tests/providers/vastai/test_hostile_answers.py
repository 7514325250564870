"""What Vast.ai (or something in its place) may answer never takes the node down: offers with
list- or text-valued numbers and NaN prices are no offers, one instance row that cannot be read
keeps its owner (so it is neither lost nor rented twice), a body that is not JSON is an error,
labels ending in a non-ASCII digit are not ours, and no pod rents more disk than allowed."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tests.providers.vastai.conftest import NODE, spec
from vk_trio.providers.base import InvalidAnnotation, InvalidSpec, ProviderUnavailable
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.pacing import DEFAULT_INTERVALS
from vk_trio.providers.vastai.translate import owner

GOOD = {
    "id": 1,
    "dph_total": 0.2,
    "gpu_name": "RTX 4090",
    "num_gpus": 1,
    "gpu_ram": 24564,
    "reliability2": 0.99,
    "direct_port_count": 10,
    "geolocation": "Texas, US",
    "disk_space": 500.0,
}


def answering(routes: dict[str, Any]) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = routes[request.url.path]
        if isinstance(body, bytes):
            return httpx2.Response(200, content=body)
        return httpx2.Response(200, content=json.dumps(body).encode())

    return httpx2.MockTransport(handle)


def provider(routes: dict[str, Any], **kw: Any) -> VastProvider:
    return VastProvider(
        NODE,
        api_key="k",
        base_url="https://vast.test",
        transport=answering(routes),
        intervals=dict.fromkeys(DEFAULT_INTERVALS, 0.0),
        trust_env=False,
        **kw,
    )


@pytest.mark.parametrize(
    "hostile",
    [
        {"reliability2": [1]},
        {"reliability2": "abc"},
        {"direct_port_count": [1]},
        {"direct_port_count": "x"},
        {"dph_total": "NaN"},
        {"dph_total": "inf"},
        {"dph_total": -1},
        {"num_gpus": 1e300},
        {"gpu_ram": "nan"},
        {"id": 2**70},
        {"id": "1" * 5000},
        {"gpu_name": ["RTX 4090"]},
    ],
)
async def test_an_offer_with_a_field_we_cannot_read_is_no_offer_and_no_crash(
    hostile: dict[str, Any],
) -> None:
    vast = provider({"/api/v0/bundles/": {"offers": [{**GOOD, **hostile}, {**GOOD, "id": 2}]}})
    try:
        offers = await vast.offers(spec().need)
    finally:
        await vast.aclose()
    assert [o.offer_id for o in offers] == ["2"]  # the good offer is still found


async def test_a_memory_need_is_judged_only_on_offers_that_can_be_read() -> None:
    odd = {**GOOD, "cpu_ram": "x", "cpu_cores": 1, "cpu_cores_effective": 1}
    listed = {**GOOD, "id": 2, "cpu_ram": 64000, "cpu_cores": 32, "cpu_cores_effective": 16}
    vast = provider({"/api/v0/bundles/": {"offers": [odd, listed]}})
    try:
        offers = await vast.offers(spec(memory_mb=8000).need)
    finally:
        await vast.aclose()
    assert [o.offer_id for o in offers] == ["2"]


async def test_one_instance_row_that_cannot_be_read_keeps_its_owner_the_rest_is_listed() -> None:
    label = f"vk-trio/{NODE}/uid-a.0"
    rows = [
        {"id": 7, "label": label, "actual_status": "running", "start_date": "NaN"},
        {"id": 8, "label": f"vk-trio/{NODE}/uid-b.0", "actual_status": "running"},
        {"id": "nine", "label": f"vk-trio/{NODE}/uid-c.0", "actual_status": "running"},
        {"id": 10, "label": f"vk-trio/{NODE}/uid-d.²", "actual_status": "running"},
    ]
    vast = provider({"/api/v1/instances/": {"instances": rows}})
    try:
        listed = {i.pod_uid: i for i in await vast.list()}
    finally:
        await vast.aclose()
    assert set(listed) == {"uid-a", "uid-b"}  # uid-c has no usable id, uid-d is not our label
    assert listed["uid-a"].unreadable and listed["uid-a"].instance_id == "7"
    assert not listed["uid-b"].unreadable
    assert vast.rows.unreadable == 2


@pytest.mark.parametrize("body", [b"<html>", b"[" * 5000, b'{"instances": ' + b"1" * 5000 + b"}"])
async def test_an_answer_that_is_not_json_is_an_error(body: bytes) -> None:
    vast = provider({"/api/v1/instances/": body})
    try:
        with pytest.raises(ProviderUnavailable):
            await vast.list()
    finally:
        await vast.aclose()


def test_labels_ending_in_a_non_ascii_digit_or_a_huge_attempt_are_not_ours() -> None:
    assert owner(f"vk-trio/{NODE}/uid.²") is None
    assert owner(f"vk-trio/{NODE}/uid.{'9' * 30}") is None
    found = owner(f"vk-trio/{NODE}/uid.3/job")
    assert found is not None and (found.attempt, found.job) == (3, True)


async def test_no_pod_rents_more_disk_than_the_node_allows() -> None:
    vast = provider({}, max_disk_gb=100)
    try:
        with pytest.raises(InvalidSpec, match="--max-disk-gb"):
            vast.check(spec(disk_gb=2**50 / 1e9))  # ephemeral-storage: 1Pi
        with pytest.raises(InvalidAnnotation, match=r"vast\.ai/disk"):
            vast.check(spec(annotations={"vast.ai/disk": "1PB"}))
        vast.check(spec(disk_gb=80.0, annotations={"vast.ai/disk": "90GB"}))
    finally:
        await vast.aclose()
