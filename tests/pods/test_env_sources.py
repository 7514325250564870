"""Where env resolution reads objects: the memo (each object once) and KubeObjectSource."""

from __future__ import annotations

import httpx2
import msgspec
import pytest

from tests.kube.fakes import StaticAccess
from vk_trio.errors import Forbidden
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.pods.env import KubeObjectSource, MemoizedSource, resolve_env

from .test_env import NS, FakeSource, key_ref, resolve

# --- memoization --------------------------------------------------------------------------------


async def test_each_object_is_fetched_once_per_resolution() -> None:
    source = FakeSource(config_maps={"cfg": {"a": "1", "b": "2"}}, secrets={"s": {"k": "v"}})
    await resolve(
        source,
        env_from=[{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "s"}}],
        env=[
            {"name": "A", "valueFrom": key_ref("ConfigMap", "cfg", "a")},
            {"name": "B", "valueFrom": key_ref("ConfigMap", "cfg", "b")},
            {"name": "K", "valueFrom": key_ref("Secret", "s", "k")},
            {"name": "K2", "valueFrom": key_ref("Secret", "s", "k")},
            {"name": "X", "valueFrom": key_ref("Secret", "gone", "k", True)},
            {"name": "Y", "valueFrom": key_ref("Secret", "gone", "k", True)},
        ],
    )
    assert sorted(source.calls) == [
        ("configmap", NS, "cfg"),
        ("secret", NS, "gone"),
        ("secret", NS, "s"),
        ("services", "default", ""),
        ("services", NS, ""),
    ]


async def test_a_shared_memoized_source_serves_every_container_of_a_pod() -> None:
    source = FakeSource(secrets={"s": {"k": "v"}})
    pod = msgspec.convert(
        {
            "metadata": {"name": "p", "namespace": NS},
            "spec": {
                "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "s"}}]}],
                "containers": [{"name": "main", "envFrom": [{"secretRef": {"name": "s"}}]}],
            },
        },
        Pod,
    )
    memo = MemoizedSource(source)
    for container in [*pod.spec.init_containers, *pod.spec.containers]:
        env = await resolve_env(pod, container, source=memo)
        assert env.values["k"] == "v"
    assert source.calls.count(("secret", NS, "s")) == 1
    assert source.calls.count(("services", NS, "")) == 1


# --- KubeObjectSource over a scripted API -------------------------------------------------------


async def test_kube_object_source_turns_not_found_into_none_and_lets_other_errors_through() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == f"/api/v1/namespaces/{NS}/secrets/there":
            return httpx2.Response(200, json={"metadata": {"name": "there"}, "data": {"k": "dg=="}})
        if path == f"/api/v1/namespaces/{NS}/configmaps/forbidden":
            body = {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}
            return httpx2.Response(403, json=body)
        if path == f"/api/v1/namespaces/{NS}/services":
            items = [
                {"metadata": {"name": "db", "namespace": NS}, "spec": {"clusterIP": "1.1.1.1"}}
            ]
            return httpx2.Response(200, json={"metadata": {}, "items": items})
        body = {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"}
        return httpx2.Response(404, json=body)

    client = KubeClient(StaticAccess(), transport=httpx2.MockTransport(handler))
    async with client:
        source = KubeObjectSource(client)
        found = await source.get_secret(NS, "there")
        assert found is not None and found.data == {"k": "dg=="}
        assert await source.get_secret(NS, "gone") is None
        assert await source.get_config_map(NS, "gone") is None
        with pytest.raises(Forbidden):
            await source.get_config_map(NS, "forbidden")
        [svc] = await source.list_services(NS)
        assert svc.spec.cluster_ip == "1.1.1.1"
