"""The fault proxy forwards faithfully and breaks things exactly when told, against a real API.

Agent tests trust the proxy to be transparent except for the faults they arm; these tests pin
both halves down, so a failing agent test points at the agent.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
import trio

from tests.controlplane.launcher import ControlPlane, kubectl_path
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.controlplane

NAMESPACES = "/api/v1/namespaces"


@pytest.fixture
async def client(
    fault_proxy: FaultProxy, controlplane: ControlPlane
) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the proxy that authenticates with the control plane's static token."""
    tls = ssl.create_default_context(cafile=str(controlplane.ca_pem))
    headers = {"Authorization": f"Bearer {controlplane.token}"}
    async with httpx2.AsyncClient(
        base_url=fault_proxy.url, verify=tls, headers=headers, trust_env=False
    ) as client:
        yield client


async def test_get_is_forwarded_with_the_bearer_token(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    response = await client.get(f"{NAMESPACES}/default")
    assert response.status_code == 200
    assert response.json()["metadata"]["name"] == "default"
    assert fault_proxy.counts[("GET", f"{NAMESPACES}/default")] == 1


async def test_request_body_is_forwarded(client: httpx2.AsyncClient, namespace: str) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "through-proxy"}}
    response = await client.post(f"{NAMESPACES}/{namespace}/configmaps", json=config_map)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["namespace"] == namespace


async def test_fail_next_answers_429_with_retry_after_then_forwards_again(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.fail_next(1, status=429, retry_after=2)
    throttled = await client.get(f"{NAMESPACES}/default")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    status = throttled.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "TooManyRequests", 429)
    assert status["details"]["retryAfterSeconds"] == 2
    assert (await client.get(f"{NAMESPACES}/default")).status_code == 200
    assert fault_proxy.count("GET", f"{NAMESPACES}/default") == 2


async def test_fail_next_spares_requests_its_match_rejects(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.fail_next(1, status=409, match=lambda request: request.method == "PUT")
    assert (await client.get(f"{NAMESPACES}/default")).status_code == 200
    assert fault_proxy.faults.rules[0].remaining == 1


async def test_drop_watches_cuts_an_open_watch_stream(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    async with client.stream("GET", NAMESPACES, params={"watch": "true"}) as response:
        lines = response.aiter_lines()
        first = json.loads(await anext(lines))
        assert first["type"] == "ADDED"
        assert fault_proxy.drop_watches() == 1
        with trio.fail_after(10), pytest.raises(httpx2.RemoteProtocolError):
            async for _ in lines:
                pass
    assert fault_proxy.open_watches == 0


async def test_graceful_drop_ends_a_watch_cleanly(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    async with client.stream("GET", NAMESPACES, params={"watch": "true"}) as response:
        lines = response.aiter_lines()
        await anext(lines)
        fault_proxy.drop_watches(graceful=True)
        with trio.fail_after(10):
            async for _ in lines:
                pass


async def test_injected_410_is_one_error_event_then_the_end(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.inject_watch_error_410()
    params = {"watch": "true", "resourceVersion": "1"}
    async with client.stream("GET", NAMESPACES, params=params) as response:
        assert response.status_code == 200
        events = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")
    ]


async def test_set_delay_holds_each_request(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.set_delay(0.3)
    started = trio.current_time()
    assert (await client.get(f"{NAMESPACES}/default")).status_code == 200
    assert trio.current_time() - started >= 0.3
    assert fault_proxy.seen[-1].at >= started


async def test_request_log_measures_the_request_rate(
    client: httpx2.AsyncClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.set_delay(0.1)
    for _ in range(3):
        await client.get(f"{NAMESPACES}/default")
    rate = fault_proxy.requests_per_second(lambda request: request.method == "GET")
    assert 0 < rate < 10.5  # three requests, each held 0.1 s


async def test_kubectl_works_through_the_proxy(
    proxy_kubeconfig: Path, fault_proxy: FaultProxy
) -> None:
    argv = [str(kubectl_path()), f"--kubeconfig={proxy_kubeconfig}", "get", "namespace", "default"]
    argv += ["-o", "jsonpath={.metadata.name}"]
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True)
    assert done.stdout == b"default"
    assert fault_proxy.count("GET", f"{NAMESPACES}/default") == 1
