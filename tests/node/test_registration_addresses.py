"""Where the API server finds the kubelet API: the InternalIP (loopback when the API server is on
loopback), a Hostname only when it resolves to that IP, and the port the API really listens on."""

from __future__ import annotations

import json

import httpx2
import pytest
import trio

from tests.kube.fakes import StaticAccess
from vk_trio.config import Config
from vk_trio.kube.client import KubeClient
from vk_trio.node import registration
from vk_trio.node.manifest import node_status
from vk_trio.node.registration import (
    NodeRegistrar,
    NodeState,
    default_node_ip,
    hostname_resolves_to,
)


def test_a_loopback_api_server_means_a_loopback_node_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registration, "outbound_ip", lambda: "192.0.2.10")
    assert default_node_ip("https://127.0.0.1:6443") == "127.0.0.1"
    assert default_node_ip("https://localhost:6443") == "127.0.0.1"
    assert default_node_ip("https://[::1]:6443") == "127.0.0.1"
    assert default_node_ip("https://10.96.0.1:443") == "192.0.2.10"
    assert default_node_ip("https://api.example.com") == "192.0.2.10"


def test_a_hostname_that_does_not_resolve_to_the_node_is_not_published() -> None:
    assert hostname_resolves_to("localhost", "127.0.0.1")
    assert not hostname_resolves_to("no-such-node.invalid", "127.0.0.1")
    status = node_status(Config(), ready=True, node_ip="10.0.0.5")
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.0.0.5"}]
    named = node_status(Config(), ready=True, node_ip="10.0.0.5", hostname=True)
    assert {"type": "Hostname", "address": "virtual-gpu"} in named["addresses"]


def test_the_node_advertises_the_port_the_kubelet_api_listens_on() -> None:
    status = node_status(Config(kubelet_port=0), ready=True, node_ip="10.0.0.5", kubelet_port=41234)
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 41234}}


async def test_a_heartbeat_in_flight_never_puts_port_0_back_after_the_bound_port(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The heartbeat's patch (built before the API listened) is slow; the port's patch follows.
    The API server keeps whichever lands last, and that must carry the bound port."""
    landed: list[int] = []
    slow_first = trio.Event()

    async def api(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if not landed and not slow_first.is_set():
            slow_first.set()
            await trio.sleep(0.5)  # the first patch is held up on its way
        landed.append(body["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])
        return httpx2.Response(200, json={"metadata": {"name": "vk"}})

    config = Config(node_name="vk", kubelet_port=0, node_ip="10.0.0.5")
    transport = httpx2.MockTransport(api)
    async with KubeClient(StaticAccess(), transport=transport) as client:
        registrar = NodeRegistrar(client, config, NodeState(name="vk"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(registrar.patch_status)  # the heartbeat, with no port yet
            await slow_first.wait()
            registrar.kubelet_port = 41234  # the kubelet API now listens
            nursery.start_soon(registrar.patch_status)
    assert landed[-1] == 41234
