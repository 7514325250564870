"""Fuzz targets for the clouds' answers: RunPod's pod list and Vast.ai's instance rows and
offers, as any server in their place might send them. A list is read into instances (one
unreadable pod becoming a placeholder, never the end of the list) or fails with a CloudError;
an offer row is an offer or none; names and labels are ours or not, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx2
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ, JSON, TEXT, VALUES, nested
from vk_trio.errors import InvalidInput
from vk_trio.providers.base import CloudError, Requirements
from vk_trio.providers.runpod import RunPodProvider, mapping
from vk_trio.providers.runpod.client import RunPodClient
from vk_trio.providers.vastai import VastProvider, selection
from vk_trio.providers.vastai.pacing import DEFAULT_INTERVALS
from vk_trio.providers.vastai.status import decode_row
from vk_trio.providers.vastai.translate import owner

NODE = "fz"
ATTEMPTS = st.sampled_from(["0", "1", "²", "9" * 30, "", "-1", "٣"]) | TEXT
UIDS = st.sampled_from(["uid-a", "uid-b", ""]) | TEXT


@st.composite
def runpod_pods(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    name = f"vk-trio.{NODE}.{draw(UIDS)}.{draw(ATTEMPTS)}"
    pod: dict[str, Any] = {
        "id": draw(st.sampled_from(["p1", "p2"]) | VALUES),
        "name": draw(st.just(name) | VALUES),
        "status": draw(st.sampled_from(["RUNNING", "EXITED", "ERROR", "TERMINATED", "X"]) | VALUES),
    }
    for key, value in draw(
        st.dictionaries(
            st.sampled_from(["ports", "runtime", "cost", "gpu", "createdAt", "env", "registry"]),
            st.one_of(
                st.lists(st.sampled_from(["8888/http", "22/tcp", "8²/tcp", "x/tcp"]) | TEXT),
                st.fixed_dictionaries(
                    {
                        "ports": st.lists(
                            st.dictionaries(
                                st.sampled_from(["private", "public", "type", "ip"]), VALUES
                            ),
                            max_size=2,
                        )
                    }
                ),
                VALUES,
            ),
            max_size=4,
        )
    ).items():
        pod[key] = value
    return pod


def runpod_transport(body: bytes) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v2/pods":
            return httpx2.Response(200, content=body)
        if request.url.path == "/v2/registries":
            return httpx2.Response(200, json={"registries": []})
        return httpx2.Response(404, json={"detail": "no"})

    return httpx2.MockTransport(handle)


RUNPOD_BODIES = st.one_of(
    st.lists(runpod_pods(), max_size=4).map(lambda pods: json.dumps({"pods": pods}).encode()),
    st.binary(max_size=60),
    st.just(nested(5000)),
    JSON.map(lambda d: json.dumps(d).encode()),
)


@FUZZ
@given(RUNPOD_BODIES)
@example(b"<html>not json</html>")
@example(json.dumps({"pods": [{"id": "p", "name": f"vk-trio.{NODE}.u.²"}]}).encode())
@example(
    json.dumps({"pods": [{"id": "p", "name": f"vk-trio.{NODE}.u.0", "ports": ["8²/tcp"]}]}).encode()
)
async def test_runpods_pod_list_is_instances_or_a_cloud_error(body: bytes) -> None:
    client = RunPodClient(
        api_key="k", base_url="https://rp.test", transport=runpod_transport(body), max_attempts=1
    )
    provider = RunPodProvider(NODE, client=client)
    try:
        instances = await provider.list()
    except CloudError:
        return
    finally:
        await provider.aclose()
    for instance in instances:
        assert 0 <= instance.attempt < 2**31 and instance.node_name == NODE


@FUZZ
@given(st.text(max_size=40) | TEXT)
@example(f"vk-trio.{NODE}.uid.²")
def test_names_and_labels_are_ours_or_not(tail: str) -> None:
    found = mapping.parse_name(f"vk-trio.{NODE}.{tail}", NODE)
    assert found is None or 0 <= found[1] < 2**31
    label = owner(f"vk-trio/{NODE}/{tail}")
    assert label is None or 0 <= label.attempt < 2**31


ROW_KEYS = st.sampled_from(
    [
        "actual_status",
        "intended_status",
        "status_msg",
        "image_args",
        "extra_env",
        "public_ipaddr",
        "ports",
        "machine_id",
        "num_gpus",
        "dph_total",
        "start_date",
        "duration",
        "uptime_mins",
    ]
)


@st.composite
def vast_rows(draw: st.DrawFn) -> dict[str, Any]:
    row = draw(st.dictionaries(ROW_KEYS, VALUES, max_size=6))
    row["id"] = draw(st.integers(0, 10**6) | VALUES)
    row["label"] = draw(st.just(f"vk-trio/{NODE}/{draw(UIDS)}.{draw(ATTEMPTS)}") | VALUES)
    return row


def vast_transport(instances: bytes, offers: bytes) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/api/v1/instances/":
            return httpx2.Response(200, content=instances)
        if request.url.path == "/api/v0/bundles/":
            return httpx2.Response(200, content=offers)
        return httpx2.Response(404, json={"error": "no_such_instance"})

    return httpx2.MockTransport(handle)


OFFER_KEYS = st.sampled_from(
    [
        "dph_total",
        "gpu_name",
        "num_gpus",
        "gpu_ram",
        "reliability2",
        "direct_port_count",
        "geolocation",
        "cpu_cores",
        "cpu_cores_effective",
        "cpu_ram",
        "hosting_type",
        "machine_id",
    ]
)
GOOD_OFFER = {
    "id": 1,
    "dph_total": 0.2,
    "gpu_name": "RTX 4090",
    "num_gpus": 1,
    "gpu_ram": 24564,
    "reliability2": 0.99,
    "direct_port_count": 10,
}


def as_body(key: str) -> Any:
    return lambda items: json.dumps({key: items}).encode()


@FUZZ
@given(
    st.lists(vast_rows(), max_size=4).map(as_body("instances")) | st.binary(max_size=40),
    st.lists(
        st.dictionaries(OFFER_KEYS, VALUES, max_size=6).map(lambda o: {**GOOD_OFFER, **o}),
        max_size=4,
    ).map(as_body("offers"))
    | st.binary(max_size=40),
)
@example(as_body("instances")([]), as_body("offers")([{**GOOD_OFFER, "reliability2": [1]}]))
@example(as_body("instances")([]), as_body("offers")([{**GOOD_OFFER, "direct_port_count": "x"}]))
@example(as_body("instances")([]), as_body("offers")([{**GOOD_OFFER, "dph_total": "NaN"}]))
@example(
    as_body("instances")([{"id": 1, "label": f"vk-trio/{NODE}/u.0", "start_date": "NaN"}]), b""
)
async def test_vast_ais_answers_are_instances_and_offers_or_a_cloud_error(
    instances: bytes, offers: bytes
) -> None:
    provider = VastProvider(
        NODE,
        api_key="k",
        base_url="https://vast.test",
        transport=vast_transport(instances, offers),
        intervals=dict.fromkeys(DEFAULT_INTERVALS, 0.0),
        trust_env=False,
    )
    try:
        with contextlib.suppress(CloudError):
            for instance in await provider.list():
                assert instance.node_name == NODE and 0 <= instance.attempt < 2**31
        with contextlib.suppress(CloudError):
            for offer in await provider.offers(Requirements(gpu_count=1)):
                assert 0 <= offer.price_per_hour <= 1e6 and offer.offer_id.isascii()
    finally:
        await provider.aclose()


@FUZZ
@given(vast_rows())
def test_a_vast_row_decodes_or_is_invalid_input(row: dict[str, Any]) -> None:
    try:
        decoded = decode_row(row)
    except InvalidInput:
        return
    assert decoded.start_date is None or 0 <= decoded.start_date <= 1e11


@FUZZ
@given(st.dictionaries(OFFER_KEYS | st.just("id"), VALUES, max_size=8))
def test_an_offer_row_is_read_or_is_invalid_input(row: dict[str, Any]) -> None:
    try:
        offer = selection.OfferRow.read(row)
    except InvalidInput:
        return
    assert 0 <= offer.dph_total <= 1e6 and offer.reliability >= 0
