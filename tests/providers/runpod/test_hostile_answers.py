"""What RunPod (or something in its place) may answer, and what a tenant's Job may print, never
takes the node down: one pod that cannot be read, a forged exit marker, a body that is not
JSON, names ending in a non-ASCII digit. Registry credentials made for pods are deleted once no
pod uses them, and no pod rents more disk than the node allows."""

from __future__ import annotations

import json

import httpx2
import pytest
import trio
import trio.testing

from tests.providers.runpod.conftest import NODE, make_provider
from tests.providers.runpod.test_requests_and_retries import rent, spec
from vk_trio.providers.base import (
    InstanceState,
    InvalidAnnotation,
    InvalidSpec,
    ProviderUnavailable,
    RegistryAuth,
    Requirements,
)
from vk_trio.providers.runpod import RunPodProvider, mapping
from vk_trio.providers.runpod.client import RunPodClient
from vk_trio.providers.runpod.registry_credentials import (
    REGISTRY_GC_SECONDS,
    REGISTRY_GRACE_SECONDS,
)
from vk_trio.sim.runpod import RunPodSim, Workload


async def test_one_pod_that_cannot_be_read_neither_spoils_the_list_nor_gets_rented_twice(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    await rent(provider, spec("uid-ok"))
    odd = spec("uid-odd")
    await rent(provider, odd)
    (broken,) = [p for p in sim.pods() if p.name.endswith("uid-odd.0")]
    broken.env = {"A": 5}  # type: ignore[dict-item]  # not a string: the Pod does not decode
    listed = {i.pod_uid: i for i in await provider.list()}
    assert set(listed) == {"uid-ok", "uid-odd"}
    assert listed["uid-odd"].unreadable and not listed["uid-ok"].unreadable
    assert listed["uid-odd"].instance_id == broken.id  # still ours to delete
    for offer in await provider.offers(odd.need):  # a retried create finds it, rents nothing
        assert (await provider.create(odd, offer)).instance_id == broken.id
        break
    assert len([p for p in sim.pods() if p.name.endswith("uid-odd.0")]) == 1
    await provider.delete(broken.id)
    assert all(p.id != broken.id for p in sim.pods())
    assert provider.rows.unreadable >= 1


async def test_a_name_ending_in_a_non_ascii_digit_is_not_ours_and_no_crash(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    await rent(provider, spec("uid-a"))
    (pod,) = sim.pods()
    pod.name = f"vk-trio.{NODE}.uid-a.²"
    pod.ports = ["8²/tcp", "8888/http"]
    assert mapping.parse_name(pod.name, NODE) is None
    assert await provider.list() == []  # int("²") raised ValueError here and stopped the node


async def test_a_job_that_prints_a_forged_5000_digit_marker_does_not_stop_the_list(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    forged = "vk-trio:exit-code=" + "9" * 5000
    sim.script_workload("forger:1", Workload(lines=(forged,), duration=None))
    sim.script_workload("honest:1", Workload(lines=("done",), duration=5, exit_code=3))
    await rent(
        provider, spec("uid-forger", image="forger:1", command=("x",), restart_policy="Never")
    )
    await rent(
        provider, spec("uid-honest", image="honest:1", command=("y",), restart_policy="Never")
    )
    with trio.fail_after(600):
        while True:
            listed = {i.pod_uid: i for i in await provider.list()}  # raised ValueError before
            if listed["uid-honest"].state is InstanceState.EXITED:
                break
            await trio.sleep(1)
    assert listed["uid-honest"].exit_code == 3
    assert listed["uid-forger"].state is not InstanceState.EXITED


async def test_an_answer_that_is_not_json_is_a_retryable_error() -> None:
    for body in (b"<html>maintenance</html>", b"[" * 5000, b'{"pods": "x"}', b"1" * 5000):
        client = RunPodClient(
            api_key="k",
            base_url="https://rp.test",
            transport=httpx2.MockTransport(lambda _r, b=body: httpx2.Response(200, content=b)),
        )
        try:
            with pytest.raises(ProviderUnavailable, match="unexpected answer"):
                await client.list_pods()
        finally:
            await client.aclose()


async def test_registry_credentials_made_for_pods_are_deleted_once_no_pod_uses_them(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("private:1", Workload(duration=None, registry_username="robot"))
    provider = make_provider(sim)
    other = make_provider(sim, node="other-node")
    auth = RegistryAuth(server="docker.io", username="robot", password="pw-1")
    try:
        first = spec("uid-p", image="private:1", command=("run",), registry_auth=auth)
        await rent(provider, first)
        await rent(
            other,
            spec(
                "uid-q",
                node_name="other-node",
                image="private:1",
                command=("run",),
                registry_auth=auth,
            ),
        )
        assert len(sim.registries) == 2  # one per node: a node only ever collects its own
        (mine,) = [p for p in sim.pods() if p.name.startswith(f"vk-trio.{NODE}.")]
        assert mine.registry is not None
        ours = sim.registries[mine.registry]
        await trio.sleep(REGISTRY_GC_SECONDS + REGISTRY_GRACE_SECONDS)
        await provider.list()
        assert ours.id in sim.registries  # its pod still uses it
        (pod,) = [p for p in await provider.list() if p.pod_uid == "uid-p"]
        await provider.delete(pod.instance_id)
        await trio.sleep(REGISTRY_GC_SECONDS)
        await provider.list()
        assert ours.id not in sim.registries
        assert len(sim.registries) == 1  # the other node's credential is not ours to collect
    finally:
        await provider.aclose()
        await other.aclose()


async def test_no_pod_rents_more_disk_than_the_node_allows(sim: RunPodSim) -> None:
    provider = make_provider(sim, max_disk_gb=200)
    huge = spec("uid-d", need=Requirements(gpu_count=1, disk_gb=2**50 / 1e9))  # 1 Pi
    with pytest.raises(InvalidSpec, match="--max-disk-gb"):
        provider.check(huge)
    annotated = spec(
        "uid-e",
        need=Requirements(gpu_count=1, annotations={"runpod.io/container-disk-gb": "500"}),
    )
    with pytest.raises(InvalidAnnotation, match="container-disk-gb"):
        provider.check(annotated)
    fine = spec("uid-f", need=Requirements(gpu_count=1, disk_gb=150.5))
    provider.check(fine)
    await provider.aclose()


async def test_a_creation_time_without_an_offset_in_year_one_does_not_stop_the_list() -> None:
    # a naive datetime was read in local time: year 1 made timestamp() raise ValueError while
    # list() sorted the node's pods to find duplicates
    pods = [
        {"id": f"p{i}", "name": f"vk-trio.{NODE}.uid-a.0", "status": "RUNNING", "createdAt": when}
        for i, when in enumerate(["0001-01-01", "2025-01-01T00:00:00Z"])
    ]
    body = json.dumps({"pods": pods}).encode()

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v2/pods":
            return httpx2.Response(200, content=body)
        return httpx2.Response(204 if request.method == "DELETE" else 404)

    client = RunPodClient(
        api_key="k", base_url="https://rp.test", transport=httpx2.MockTransport(handle)
    )
    provider = RunPodProvider(NODE, client=client)
    try:
        (kept,) = await provider.list()  # the newer duplicate was deleted, the oldest kept
    finally:
        await provider.aclose()
    assert kept.instance_id == "p0"


async def test_an_id_with_a_control_character_is_one_quoted_path_segment() -> None:
    # found by fuzz/test_cloud_answers.py: deleting a duplicate whose id was "q\x1f" raised
    # httpx2.InvalidURL out of list()
    pods = [
        {"id": pid, "name": f"vk-trio.{NODE}.uid-a.0", "status": "RUNNING", "createdAt": when}
        for pid, when in [("p1", "2025-01-01T00:00:00Z"), ("q\x1f/../x", "2025-02-01T00:00:00Z")]
    ]
    deleted: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.method == "DELETE":
            deleted.append(request.url.raw_path.decode())
            return httpx2.Response(404)
        return httpx2.Response(200, json={"pods": pods})

    client = RunPodClient(
        api_key="k", base_url="https://rp.test", transport=httpx2.MockTransport(handle)
    )
    provider = RunPodProvider(NODE, client=client)
    try:
        (kept,) = await provider.list()
    finally:
        await provider.aclose()
    assert kept.instance_id == "p1"
    assert deleted == ["/v2/pods/q%1F%2F..%2Fx"]


async def test_a_gpu_type_the_catalog_cannot_describe_is_skipped_not_fatal() -> None:
    catalog = {
        "gpus": [
            {"id": "odd", "price": {"secure": -1}},
            {"id": "junk", "memory": "lots"},
            {"id": "NVIDIA A40", "memory": 48, "secure": True, "price": {"secure": 0.4}},
        ]
    }
    client = RunPodClient(
        api_key="k",
        base_url="https://rp.test",
        transport=httpx2.MockTransport(lambda request: httpx2.Response(200, json=catalog)),
    )
    try:
        gpus = await client.gpu_types(count=1, cloud="SECURE")
    finally:
        await client.aclose()
    assert [g.id for g in gpus] == ["NVIDIA A40"]
