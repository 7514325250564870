"""KubeClient against a scripted transport: retries, Retry-After, error mapping, paging, auth."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import msgspec
import pytest
import trio

from vk_trio.errors import (
    Conflict,
    Invalid,
    KubeTransportError,
    NotFound,
    ServerError,
    TooManyRequests,
)
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import NODES, PODS
from vk_trio.pacing import Backoff

from .fakes import StaticAccess, StaticToken


def status_body(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def pod_json(name: str, rv: str = "1") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "uid": name}}


def client_for(
    handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: object
) -> KubeClient:
    return KubeClient(
        StaticAccess(),
        transport=httpx2.MockTransport(handler),
        backoff=Backoff(initial=1, maximum=8, jitter=0),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_429_is_retried_after_the_servers_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(trio.current_time())
        if len(calls) < 3:
            return httpx2.Response(
                429,
                headers={"retry-after": "7"},
                json=status_body(429, "TooManyRequests", "slow down"),
            )
        return httpx2.Response(200, json=pod_json("a"))

    async with client_for(handler) as client:
        pod = await client.get(PODS, "a", namespace="ns")
    assert pod.metadata.name == "a"
    assert [round(t - calls[0]) for t in calls] == [0, 7, 14]


async def test_429_on_a_create_is_retried_because_nothing_happened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.method)
        if len(seen) == 1:
            return httpx2.Response(429, json=status_body(429, "TooManyRequests", "x"))
        return httpx2.Response(201, content=request.content)

    async with client_for(handler) as client:
        created = await client.create(PODS, Pod(), namespace="ns")
    assert seen == ["POST", "POST"]
    assert created.kind == "Pod"


async def test_5xx_is_retried_for_get_but_not_for_post(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counts = {"GET": 0, "POST": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        counts[request.method] += 1
        if request.method == "GET" and counts["GET"] == 1:
            return httpx2.Response(503, json=status_body(503, "ServiceUnavailable", "busy"))
        if request.method == "POST":
            return httpx2.Response(500, json=status_body(500, "InternalError", "oops"))
        return httpx2.Response(200, json=pod_json("a"))

    async with client_for(handler) as client:
        await client.get(PODS, "a", namespace="ns")
        with pytest.raises(ServerError, match="oops"):
            await client.create(PODS, Pod(), namespace="ns")
    assert counts == {"GET": 2, "POST": 1}


async def test_retries_give_up_with_the_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, json=status_body(429, "TooManyRequests", "never"))

    async with client_for(handler, max_retries=3) as client:
        with pytest.raises(TooManyRequests) as info:
            await client.get(PODS, "a", namespace="ns")
    assert info.value.code == 429


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [(404, "NotFound", NotFound), (409, "AlreadyExists", Conflict), (422, "Invalid", Invalid)],
)
async def test_status_bodies_map_to_the_error_tree(
    code: int, reason: str, error: type[Exception]
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(code, json=status_body(code, reason, f'pods "a" {reason}'))

    async with client_for(handler) as client:
        with pytest.raises(error) as info:
            await client.get(PODS, "a", namespace="ns")
    assert getattr(info.value, "reason", None) == reason
    assert "pods" in str(info.value)


async def test_connection_errors_become_transport_errors_after_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    async with client_for(handler, max_retries=2) as client:
        with pytest.raises(KubeTransportError, match="refused"):
            await client.get(NODES, "n")


async def test_a_401_refreshes_the_credential_once() -> None:
    tokens = StaticToken()
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("authorization"))
        if len(seen) == 1:
            tokens.token = "t1"  # the rotated token appears after invalidation
            return httpx2.Response(401, json=status_body(401, "Unauthorized", "expired"))
        return httpx2.Response(200, json=pod_json("a"))

    client = KubeClient(StaticAccess(token_source=tokens), transport=httpx2.MockTransport(handler))
    async with client:
        await client.get(PODS, "a", namespace="ns")
    assert tokens.invalidations == 1
    assert seen == ["Bearer t0", "Bearer t1"]


async def test_list_follows_continue_tokens() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        token = request.url.params.get("continue")
        assert request.url.params["fieldSelector"] == "spec.nodeName=vk"
        if token is None:
            return httpx2.Response(
                200,
                json={
                    "metadata": {"resourceVersion": "10", "continue": "p2"},
                    "items": [pod_json("a"), pod_json("b")],
                },
            )
        assert token == "p2"
        return httpx2.Response(
            200, json={"metadata": {"resourceVersion": "10"}, "items": [pod_json("c")]}
        )

    async with client_for(handler) as client:
        listed = await client.list(PODS, field_selector="spec.nodeName=vk", limit=2)
    assert [p.metadata.name for p in listed.items] == ["a", "b", "c"]
    assert listed.metadata.resource_version == "10"


async def test_delete_sends_grace_period_and_uid_precondition() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=pod_json("a"))

    async with client_for(handler) as client:
        await client.delete(PODS, "a", namespace="ns", grace_period_seconds=0, uid="u-1")
    assert bodies[0]["gracePeriodSeconds"] == 0
    assert bodies[0]["preconditions"] == {"uid": "u-1"}


async def test_patch_uses_the_content_type_of_its_kind_and_the_status_subresource() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.path, request.headers["content-type"]))
        return httpx2.Response(200, json=pod_json("a"))

    async with client_for(handler) as client:
        await client.patch(
            PODS, "a", {"status": {"phase": "Running"}}, namespace="ns", subresource="status"
        )
        await client.patch(PODS, "a", {"metadata": {}}, namespace="ns", patch_type="strategic")
        await client.patch(
            PODS, "a", [{"op": "test", "path": "/x", "value": 1}], namespace="ns", patch_type="json"
        )
    assert seen == [
        ("/api/v1/namespaces/ns/pods/a/status", "application/merge-patch+json"),
        ("/api/v1/namespaces/ns/pods/a", "application/strategic-merge-patch+json"),
        ("/api/v1/namespaces/ns/pods/a", "application/json-patch+json"),
    ]


async def test_the_limiter_holds_the_configured_qps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        times.append(trio.current_time())
        return httpx2.Response(200, json=pod_json("a"))

    async with client_for(handler, qps=20, burst=5) as client:
        for _ in range(45):
            await client.get(PODS, "a", namespace="ns")
    # burst of 5 immediately, then 40 more at 20/s: two seconds
    assert times[-1] - times[0] == pytest.approx(2.0, abs=0.05)


def test_models_keep_kubernetes_acronyms() -> None:
    raw = (
        b'{"status":{"podIP":"10.0.0.1","hostIP":"1.1.1.1","containerStatuses":'
        b'[{"name":"c","imageID":"sha","containerID":"x://1"}]}}'
    )
    pod = msgspec.json.decode(raw, type=Pod)
    assert pod.status.pod_ip == "10.0.0.1"
    assert pod.status.host_ip == "1.1.1.1"
    assert pod.status.container_statuses[0].image_id == "sha"
    assert b'"podIP":"10.0.0.1"' in msgspec.json.encode(pod)
