"""KubeClient against a real kube-apiserver: CRUD of pods and nodes, paging, the three patch
types, the status subresource, delete options, and error mapping, cross-checked with kubectl.

The scripted-transport tests (test_client.py) assume what the server sends; these check that
what we send is what the server understands, and that what it answers decodes and maps as
intended. Pods use a scheduler nobody runs (or a Node of our own), so agents of other tests
sharing the control plane never see them.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.controlplane.launcher import ControlPlane
from tests.faultproxy import FaultProxy
from tests.kube.controlplane_support import (
    KubectlFailed,
    client_from,
    kubectl,
    kubectl_json,
    pod_manifest,
    unique,
)
from vk_trio.errors import Conflict, Invalid, NotFound
from vk_trio.kube.client import KubeClient, selector
from vk_trio.kube.resources import NODES, PODS

pytestmark = pytest.mark.controlplane

LIMIT = 30.0  # seconds any one test may take


@pytest.fixture
async def client(controlplane: ControlPlane) -> AsyncIterator[KubeClient]:
    async with client_from(controlplane.kubeconfig) as kube:
        yield kube


@pytest.fixture
async def node(client: KubeClient) -> AsyncIterator[str]:
    """A Node of our own (no agent behind it) for pods that must be bound."""
    name = unique("kube-client-test")
    await client.create(NODES, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        with trio.CancelScope(shield=True), contextlib.suppress(NotFound):
            await client.delete(NODES, name)


# --- create / get / list ----------------------------------------------------------------------


async def test_pod_created_by_the_client_is_what_kubectl_and_get_see(
    client: KubeClient, controlplane: ControlPlane, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        created = await client.create(
            PODS, pod_manifest("ours", labels={"made-by": "client"}), namespace=namespace
        )
        assert created.metadata.uid
        assert created.metadata.namespace == namespace
        assert created.status.phase == "Pending"

        seen = await kubectl_json(controlplane, "get", "pod", "ours", "-n", namespace)
        assert seen["metadata"]["uid"] == created.metadata.uid
        assert seen["metadata"]["labels"] == {"made-by": "client"}
        assert seen["spec"]["containers"][0]["image"] == "busybox:1.36"

        got = await client.get(PODS, "ours", namespace=namespace)
        assert got.metadata.uid == created.metadata.uid
        assert got.metadata.resource_version == created.metadata.resource_version
        assert [c.name for c in got.spec.containers] == ["main"]


async def test_pod_created_by_kubectl_is_seen_by_get_and_list_and_its_kubectl_delete_too(
    client: KubeClient, controlplane: ControlPlane, namespace: str
) -> None:
    manifest = {"apiVersion": "v1", "kind": "Pod", **pod_manifest("theirs")}
    manifest["metadata"]["labels"] = {"made-by": "kubectl"}
    with trio.fail_after(LIMIT):
        await kubectl(
            controlplane, "create", "-n", namespace, "-f", "-", stdin=json.dumps(manifest)
        )
        uid = (await kubectl_json(controlplane, "get", "pod", "theirs", "-n", namespace))[
            "metadata"
        ]["uid"]

        got = await client.get(PODS, "theirs", namespace=namespace)
        assert got.metadata.uid == uid
        listed = await client.list(PODS, namespace=namespace, label_selector="made-by=kubectl")
        assert [p.metadata.uid for p in listed.items] == [uid]
        assert listed.metadata.resource_version

        await kubectl(controlplane, "delete", "pod", "theirs", "-n", namespace, "--wait=true")
        with pytest.raises(NotFound):
            await client.get(PODS, "theirs", namespace=namespace)


async def test_list_follows_continue_tokens_until_every_pod_is_back(
    client: KubeClient, controlplane: ControlPlane, namespace: str
) -> None:
    count, limit = 8, 3
    labels = {"batch": "paging"}
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            for i in range(count):
                create = functools.partial(client.create, namespace=namespace)
                nursery.start_soon(create, PODS, pod_manifest(f"p{i}", labels=labels))
        await client.create(PODS, pod_manifest("other"), namespace=namespace)  # not selected

        gets_before = client.sent.get("GET", 0)
        listed = await client.list(
            PODS, namespace=namespace, label_selector=selector(labels), limit=limit
        )
        pages = client.sent["GET"] - gets_before
        assert pages == -(-count // limit)  # ceil: 3 pages of 3, 3, 2
        assert sorted(p.metadata.name for p in listed.items) == [f"p{i}" for i in range(count)]
        assert len({p.metadata.uid for p in listed.items}) == count
        assert listed.metadata.continue_ == ""
        assert listed.metadata.resource_version

        everything = await client.list(PODS, namespace=namespace, limit=2)
        by_kubectl = await kubectl_json(controlplane, "get", "pods", "-n", namespace)
        assert sorted(p.metadata.uid for p in everything.items) == sorted(
            item["metadata"]["uid"] for item in by_kubectl["items"]
        )
        assert len(everything.items) == count + 1


# --- patches ----------------------------------------------------------------------------------


async def test_merge_patch_adds_changes_and_removes_labels(
    client: KubeClient, controlplane: ControlPlane, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        await client.create(
            PODS, pod_manifest("p", labels={"keep": "1", "drop": "1"}), namespace=namespace
        )
        patch = {"metadata": {"labels": {"keep": "2", "drop": None, "new": "3"}}}
        patched = await client.patch(PODS, "p", patch, namespace=namespace)
        assert patched.metadata.labels == {"keep": "2", "new": "3"}
        seen = await kubectl_json(controlplane, "get", "pod", "p", "-n", namespace)
        assert seen["metadata"]["labels"] == {"keep": "2", "new": "3"}


async def test_strategic_merge_patch_merges_containers_by_name_where_merge_patch_replaces(
    client: KubeClient, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        await client.create(
            PODS, pod_manifest("p", containers=("first", "second")), namespace=namespace
        )
        new_image = {"spec": {"containers": [{"name": "second", "image": "busybox:1.37"}]}}

        patched = await client.patch(
            PODS, "p", new_image, namespace=namespace, patch_type="strategic"
        )
        images = {c.name: c.image for c in patched.spec.containers}
        assert images == {"first": "busybox:1.36", "second": "busybox:1.37"}

        # The same body as a JSON merge patch replaces the whole list, dropping "first":
        # pods forbid that, which shows the content type reached the server as intended.
        with pytest.raises(Invalid) as caught:
            await client.patch(PODS, "p", new_image, namespace=namespace, patch_type="merge")
        assert caught.value.reason == "Invalid"
        after = await client.get(PODS, "p", namespace=namespace)
        assert [c.name for c in after.spec.containers] == ["first", "second"]


async def test_json_patch_applies_its_operations_and_a_failed_test_operation_applies_none(
    client: KubeClient, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        created = await client.create(
            PODS, pod_manifest("p", labels={"a": "0"}), namespace=namespace
        )
        rv = created.metadata.resource_version
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}},
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:1.37"},
        ]
        patched = await client.patch(PODS, "p", ops, namespace=namespace, patch_type="json")
        assert patched.metadata.annotations == {"a": "1"}
        assert patched.metadata.labels == {"a": "0", "b": "2"}
        assert patched.spec.containers[0].image == "busybox:1.37"

        stale = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},  # no longer true
            {"op": "add", "path": "/metadata/annotations/c", "value": "3"},
        ]
        with pytest.raises(Invalid):
            await client.patch(PODS, "p", stale, namespace=namespace, patch_type="json")
        after = await client.get(PODS, "p", namespace=namespace)
        assert after.metadata.annotations == {"a": "1"}
        assert after.metadata.resource_version == patched.metadata.resource_version


async def test_status_is_written_through_the_status_subresource_and_ignored_on_the_pod(
    client: KubeClient, controlplane: ControlPlane, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        await client.create(PODS, pod_manifest("p"), namespace=namespace)
        status = {
            "status": {
                "message": "written by the test",
                "conditions": [{"type": "example.com/Checked", "status": "True", "reason": "Test"}],
            }
        }
        ignored = await client.patch(PODS, "p", status, namespace=namespace)
        assert ignored.status.message == ""
        assert "example.com/Checked" not in {c.type for c in ignored.status.conditions}

        patched = await client.patch(PODS, "p", status, namespace=namespace, subresource="status")
        assert patched.status.message == "written by the test"
        conditions = {c.type: c for c in patched.status.conditions}
        assert (
            conditions["example.com/Checked"].status,
            conditions["example.com/Checked"].reason,
        ) == (
            "True",
            "Test",
        )
        seen = await kubectl_json(controlplane, "get", "pod", "p", "-n", namespace)
        assert seen["status"]["message"] == "written by the test"

        # Strategic merge on status merges conditions by type, keeping ours.
        scheduled = {"status": {"conditions": [{"type": "example.com/Other", "status": "False"}]}}
        merged = await client.patch(
            PODS, "p", scheduled, namespace=namespace, subresource="status", patch_type="strategic"
        )
        types = {c.type for c in merged.status.conditions}
        assert {"example.com/Checked", "example.com/Other"} <= types


async def test_node_is_created_labelled_given_a_status_and_deleted(
    client: KubeClient, controlplane: ControlPlane
) -> None:
    name = unique("kube-client-node")
    with trio.fail_after(LIMIT):
        created = await client.create(NODES, {"metadata": {"name": name, "labels": {"a": "1"}}})
        try:
            assert created.metadata.uid
            assert created.metadata.namespace == ""

            labelled = await client.patch(
                NODES, name, {"metadata": {"labels": {"b": "2"}}}, patch_type="strategic"
            )
            assert labelled.metadata.labels == {"a": "1", "b": "2"}

            status = {
                "status": {
                    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "test",
                            "lastHeartbeatTime": "2026-03-01T12:00:00Z",
                            "lastTransitionTime": "2026-03-01T12:00:00Z",
                        }
                    ],
                }
            }
            ready = await client.patch(NODES, name, status, subresource="status")
            assert ready.status.capacity["cpu"] == "4"
            assert {c.type: c.status for c in ready.status.conditions}["Ready"] == "True"

            seen = await kubectl_json(controlplane, "get", "node", name)
            assert seen["metadata"]["labels"] == {"a": "1", "b": "2"}
            assert seen["status"]["capacity"]["memory"] == "8Gi"
            listed = await client.list(NODES, label_selector="a=1,b=2")
            assert name in {n.metadata.name for n in listed.items}
        finally:
            with trio.CancelScope(shield=True):
                await client.delete(NODES, name)
        with pytest.raises(NotFound):
            await client.get(NODES, name)
        with pytest.raises(KubectlFailed, match="NotFound"):
            await kubectl(controlplane, "get", "node", name)


# --- delete -----------------------------------------------------------------------------------


async def test_delete_with_a_grace_period_leaves_a_bound_pod_terminating_and_zero_removes_it(
    client: KubeClient, namespace: str, node: str
) -> None:
    with trio.fail_after(LIMIT):
        await client.create(PODS, pod_manifest("p", node_name=node), namespace=namespace)

        await client.delete(PODS, "p", namespace=namespace, grace_period_seconds=30)
        terminating = await client.get(PODS, "p", namespace=namespace)
        assert terminating.metadata.deletion_timestamp is not None
        assert terminating.metadata.deletion_grace_period_seconds == 30

        await client.delete(PODS, "p", namespace=namespace, grace_period_seconds=0)
        with pytest.raises(NotFound):
            await client.get(PODS, "p", namespace=namespace)


async def test_delete_with_a_wrong_uid_precondition_is_a_conflict_and_keeps_the_pod(
    client: KubeClient, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        created = await client.create(PODS, pod_manifest("p"), namespace=namespace)
        wrong = "00000000-0000-0000-0000-000000000000"

        with pytest.raises(Conflict) as caught:
            await client.delete(PODS, "p", namespace=namespace, uid=wrong)
        assert caught.value.reason == "Conflict"
        assert "precondition" in caught.value.message.lower()
        assert (
            await client.get(PODS, "p", namespace=namespace)
        ).metadata.uid == created.metadata.uid

        await client.delete(PODS, "p", namespace=namespace, uid=created.metadata.uid)
        with pytest.raises(NotFound):
            await client.get(PODS, "p", namespace=namespace)


# --- error mapping ----------------------------------------------------------------------------


async def test_missing_pod_and_node_are_not_found(client: KubeClient, namespace: str) -> None:
    with trio.fail_after(LIMIT):
        with pytest.raises(NotFound) as caught:
            await client.get(PODS, "nobody", namespace=namespace)
        assert (caught.value.code, caught.value.reason) == (404, "NotFound")
        with pytest.raises(NotFound):
            await client.get(NODES, unique("no-such-node"))
        with pytest.raises(NotFound):
            await client.delete(PODS, "nobody", namespace=namespace)
        with pytest.raises(NotFound):
            await client.patch(
                PODS, "nobody", {"metadata": {"labels": {"a": "b"}}}, namespace=namespace
            )


async def test_creating_a_pod_twice_is_a_conflict_with_reason_already_exists(
    client: KubeClient, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        await client.create(PODS, pod_manifest("p"), namespace=namespace)
        with pytest.raises(Conflict) as caught:
            await client.create(PODS, pod_manifest("p"), namespace=namespace)
        assert (caught.value.code, caught.value.reason) == (409, "AlreadyExists")


async def test_a_stale_resource_version_in_a_patch_is_a_conflict(
    client: KubeClient, namespace: str
) -> None:
    with trio.fail_after(LIMIT):
        created = await client.create(PODS, pod_manifest("p"), namespace=namespace)
        await client.patch(PODS, "p", {"metadata": {"labels": {"a": "1"}}}, namespace=namespace)
        stale = {
            "metadata": {
                "resourceVersion": created.metadata.resource_version,
                "labels": {"a": "2"},
            }
        }
        with pytest.raises(Conflict) as caught:
            await client.patch(PODS, "p", stale, namespace=namespace)
        assert caught.value.reason == "Conflict"
        assert (await client.get(PODS, "p", namespace=namespace)).metadata.labels == {"a": "1"}


async def test_an_invalid_pod_is_rejected_as_invalid(client: KubeClient, namespace: str) -> None:
    with trio.fail_after(LIMIT):
        no_containers = {"metadata": {"name": "p"}, "spec": {"containers": []}}
        with pytest.raises(Invalid) as caught:
            await client.create(PODS, no_containers, namespace=namespace)
        assert (caught.value.code, caught.value.reason) == (422, "Invalid")
        assert "spec.containers" in caught.value.message

        bad_name = pod_manifest("Not_A_DNS_Name")
        with pytest.raises(Invalid):
            await client.create(PODS, bad_name, namespace=namespace)
        with pytest.raises(NotFound):
            await client.get(PODS, "p", namespace=namespace)


# --- pacing and throttling, measured at the fault proxy ------------------------------------------


QPS, BURST, GETS = 20.0, 5, 65


def _arrivals(proxy: FaultProxy, path: str) -> list[float]:
    """Arrival times at the proxy (trio.current_time(), the test's own clock) of GETs of `path`."""
    return [info.at for info in proxy.seen if info.method == "GET" and info.path == path]


def _paced(start: float, elapsed: float, times: list[float]) -> None:
    """The token bucket's promise, exact: by `start + t` at most BURST + QPS*t requests have been
    let go, so request k (0-based) reaches the proxy no earlier than start + (k+1-BURST)/QPS.

    Arrival comes after release, so a loaded machine (the suite runs on several workers) can
    only make a request later, never earlier: the bound holds for every request, jitter or not.
    A rate computed between two arrivals does not (a late first arrival inflates it). The upper
    bound only says the limiter did not stall, with room for that load."""
    assert len(times) == GETS
    early = [
        (k, round(at - start, 3))
        for k, at in enumerate(times)
        if at < start + (k + 1 - BURST) / QPS - 0.001
    ]
    assert not early, f"requests let go before their token (index, seconds after start): {early}"
    expected = (GETS - BURST) / QPS  # the burst is free, then one request per 1/QPS s
    assert 0.95 * expected <= elapsed < 2.5 * expected + 1.0, f"{elapsed:.2f} s for {GETS} GETs"


async def test_the_limiter_holds_qps_and_burst_against_the_real_server(
    proxy_kubeconfig: Path, fault_proxy: FaultProxy, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}"
    async with client_from(proxy_kubeconfig, qps=QPS, burst=BURST) as client:
        with trio.fail_after(LIMIT):
            start = trio.current_time()
            for _ in range(GETS):
                await client.request("GET", path)
            elapsed = trio.current_time() - start

    times = _arrivals(fault_proxy, path)
    _paced(start, elapsed, times)
    assert times[BURST - 1] - times[0] < 0.5, "the burst goes out at once"


async def test_concurrent_callers_share_one_limiter(
    proxy_kubeconfig: Path, fault_proxy: FaultProxy, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}"
    async with client_from(proxy_kubeconfig, qps=QPS, burst=BURST) as client:
        with trio.fail_after(LIMIT):
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for _ in range(GETS):
                    nursery.start_soon(client.request, "GET", path)
            elapsed = trio.current_time() - start

    _paced(start, elapsed, _arrivals(fault_proxy, path))


async def test_429_with_retry_after_is_waited_out_then_the_get_succeeds(
    proxy_kubeconfig: Path, fault_proxy: FaultProxy, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}"
    fault_proxy.fail_next(2, status=429, retry_after=2, match=lambda info: info.path == path)
    async with client_from(proxy_kubeconfig) as client:
        with trio.fail_after(LIMIT):
            response = await client.request("GET", path)
    assert response.json()["metadata"]["name"] == namespace
    times = [info.at for info in fault_proxy.seen if info.path == path]
    assert len(times) == 3
    assert times[1] - times[0] >= 2.0
    assert times[2] - times[1] >= 2.0
    assert 4.0 <= times[2] - times[0] <= 5.5, f"{times[2] - times[0]:.2f} s to success"


async def test_a_throttled_create_is_retried_and_creates_exactly_one_object(
    proxy_kubeconfig: Path, fault_proxy: FaultProxy, controlplane: ControlPlane, namespace: str
) -> None:
    """429 means the server did not act, so even a POST is safe to send again."""
    fault_proxy.fail_next(1, status=429, retry_after=1, match=lambda info: info.method == "POST")
    async with client_from(proxy_kubeconfig) as client:
        with trio.fail_after(LIMIT):
            created = await client.create(PODS, pod_manifest("once"), namespace=namespace)
            seen = await kubectl_json(controlplane, "get", "pods", "-n", namespace)
    assert fault_proxy.count("POST") == 2
    assert [item["metadata"]["uid"] for item in seen["items"]] == [created.metadata.uid]
