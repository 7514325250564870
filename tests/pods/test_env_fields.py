"""fieldRef and resourceFieldRef: the downward API in env vars, as the kubelet computes it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from vk_trio.kube.models import Pod
from vk_trio.pods.env import InvalidEnvSource, ResolvedEnv, resolve_env
from vk_trio.pods.expansion import format_map, go_quote

from .test_env import FakeSource

POD: dict[str, Any] = {
    "metadata": {
        "name": "trainer",
        "namespace": "team",
        "uid": "6f1e-uid",
        "labels": {"app": "train", "tier": "gpu"},
        "annotations": {"example.com/run": "42", "note": 'say "hi"\n'},
    },
    "spec": {"nodeName": "vk-gpu", "serviceAccountName": "runner", "containers": []},
}


async def resolve_one(
    value_from: dict[str, Any],
    *,
    resources: dict[str, Any] | None = None,
    others: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> ResolvedEnv:
    """Resolve one env var V of container "main" (plus optional sibling containers)."""
    main: dict[str, Any] = {"name": "main", "env": [{"name": "V", "valueFrom": value_from}]}
    if resources is not None:
        main["resources"] = resources
    manifest = {**POD, "spec": {**POD["spec"], "containers": [main, *(others or [])]}}
    pod = msgspec.convert(manifest, Pod)
    return await resolve_env(pod, pod.spec.containers[0], source=FakeSource(), **kwargs)


def field(path: str) -> dict[str, Any]:
    return {"fieldRef": {"fieldPath": path}}


# --- fieldRef -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "trainer"),
        ("metadata.namespace", "team"),
        ("metadata.uid", "6f1e-uid"),
        ("metadata.labels['app']", "train"),
        ("metadata.labels['absent']", ""),
        ("metadata.annotations['example.com/run']", "42"),
        ("metadata.labels", 'app="train"\ntier="gpu"'),
        ("metadata.annotations", 'example.com/run="42"\nnote="say \\"hi\\"\\n"'),
        ("spec.nodeName", "vk-gpu"),
        ("spec.host", "vk-gpu"),
        ("spec.serviceAccountName", "runner"),
        ("status.hostIP", "192.0.2.7"),
        ("status.hostIPs", "192.0.2.7"),
        ("status.podIP", "198.51.100.3"),
        ("status.podIPs", "198.51.100.3"),
    ],
)
async def test_field_refs_resolve_like_the_kubelet(path: str, expected: str) -> None:
    env = await resolve_one(field(path), pod_ip="198.51.100.3", host_ip="192.0.2.7")
    assert env.values == {"V": expected}
    assert env.warnings == []


@pytest.mark.parametrize("path", ["status.podIP", "status.podIPs"])
async def test_an_unknown_pod_ip_is_empty_with_a_warning_not_an_error(path: str) -> None:
    env = await resolve_one(field(path))
    assert env.values == {"V": ""}
    [warning] = env.warnings
    assert warning.reason == "PodIPUnknown" and "env var V" in warning.message


async def test_field_ref_with_an_explicit_v1_api_version_resolves() -> None:
    env = await resolve_one({"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}})
    assert env.values == {"V": "trainer"}


@pytest.mark.parametrize(
    "ref",
    [
        field("status.phase"),
        field("spec.restartPolicy"),
        field("metadata.generation"),
        field("spec.nodeName['x']"),
        {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}},
    ],
)
async def test_field_refs_the_kubelet_refuses_are_refused(ref: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvSource, match="env var V"):
        await resolve_one(ref)


def test_labels_are_rendered_with_go_quoting() -> None:
    assert format_map({"b": "x", "a": "tab\there"}) == 'a="tab\\there"\nb="x"'
    assert go_quote('q"\\\a\x00\x7f\u200b\U0001f600é') == '"q\\"\\\\\\a\\x00\\x7f\\u200b😀é"'
    assert go_quote("\U000e0001") == '"\\U000e0001"'


# --- resourceFieldRef ---------------------------------------------------------------------------


def res(resource: str, divisor: str | None = None, container: str = "") -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource}
    if divisor is not None:
        ref["divisor"] = divisor
    if container:
        ref["containerName"] = container
    return {"resourceFieldRef": ref}


RESOURCES = {
    "limits": {"cpu": "1500m", "memory": "3Gi", "ephemeral-storage": "10G", "hugepages-2Mi": "4Mi"},
    "requests": {"cpu": "250m", "memory": "1.5", "ephemeral-storage": "0"},
}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (res("limits.cpu"), "2"),  # 1.5 cores, rounded up
        (res("limits.cpu", "1m"), "1500"),
        (res("requests.cpu"), "1"),
        (res("requests.cpu", "1m"), "250"),
        (res("limits.memory"), str(3 * 2**30)),
        (res("limits.memory", "1Mi"), "3072"),
        (res("limits.memory", "1G"), "4"),  # 3.22 GB, rounded up
        (res("requests.memory"), "2"),  # "1.5" bytes is 2 bytes (Quantity.Value rounds up)
        (res("limits.ephemeral-storage", "1Gi"), "10"),  # 9.31 GiB, rounded up
        (res("requests.ephemeral-storage"), "0"),
        (res("limits.hugepages-2Mi", "1Mi"), "4"),
        (res("requests.hugepages-2Mi"), "0"),
    ],
)
async def test_resource_field_refs_divide_and_round_up_like_the_kubelet(
    ref: dict[str, Any], expected: str
) -> None:
    env = await resolve_one(ref, resources=RESOURCES)
    assert env.values == {"V": expected}


@pytest.mark.parametrize(
    ("limits", "expected"),
    [({}, "16"), ({"cpu": "0"}, "16"), ({"cpu": "2"}, "2")],
)
async def test_an_unset_or_zero_limit_is_the_nodes_allocatable(
    limits: dict[str, Any], expected: str
) -> None:
    allocatable = {"cpu": "16", "memory": "64Gi"}
    env = await resolve_one(
        res("limits.cpu"), resources={"limits": limits}, node_allocatable=allocatable
    )
    assert env.values == {"V": expected}


async def test_requests_are_never_defaulted_and_a_missing_allocatable_is_zero() -> None:
    env = await resolve_one(res("requests.memory"), node_allocatable={"memory": "64Gi"})
    assert env.values == {"V": "0"}
    env = await resolve_one(res("limits.memory"))
    assert env.values == {"V": "0"}


async def test_a_resource_ref_can_name_another_container_of_the_pod() -> None:
    sidecar = {"name": "side", "resources": {"limits": {"memory": "256Mi"}}}
    env = await resolve_one(res("limits.memory", "1Mi", "side"), others=[sidecar])
    assert env.values == {"V": "256"}


@pytest.mark.parametrize(
    "ref",
    [res("limits.nvidia.com/gpu"), res("limits.pods"), res("cpu"), res("limits.cpu", "", "nope")],
)
async def test_resource_refs_the_kubelet_refuses_are_refused(ref: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvSource, match="env var V"):
        await resolve_one(ref, resources=RESOURCES)


async def test_a_malformed_quantity_is_an_invalid_source_not_a_crash() -> None:
    with pytest.raises(InvalidEnvSource, match="env var V: invalid quantity"):
        await resolve_one(res("limits.cpu"), resources={"limits": {"cpu": "lots"}})
