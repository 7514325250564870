"""Credentials.ssl_context() against a real TLS server on loopback, through httpx2.

The server holds a certificate for ``kubernetes.internal`` only and is dialled as 127.0.0.1,
which is exactly the case kubectl's tls-server-name exists for.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
import trio.testing

from tests.kube.test_auth_exec import Plugin
from tests.kube.test_auth_support import SERVER_NAME, pki
from vk_trio.errors import ConfigError
from vk_trio.kube.auth import Credentials, resolve_credentials
from vk_trio.kube.auth_tls import load_client_certificate
from vk_trio.kube.auth_tokens import StaticTokenSource


@dataclass
class Server:
    url: str
    sni: list[str | None] = field(default_factory=list)


async def _handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
    try:
        await stream.do_handshake()
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(65536)
        headers = dict(
            line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line
        )
        peer = stream.getpeercert() or {}
        subject = dict(pair[0] for pair in peer.get("subject", ()))
        body = json.dumps(
            {"cn": subject.get("commonName"), "authorization": headers.get("authorization")}
        ).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        await stream.send_all(head.encode() + body)
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
        pass  # the client refused our certificate: that is what some tests want


@asynccontextmanager
async def tls_server() -> AsyncIterator[Server]:
    material = pki()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_client_certificate(
        context, cert_pem=material.server_cert_pem, key_pem=material.server_key_pem
    )
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=material.ca_pem.decode())
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_ssl_over_tcp_listeners(0, context, host="127.0.0.1")
        transport = listeners[0].transport_listener
        assert isinstance(transport, trio.SocketListener)
        server = Server(url=f"https://127.0.0.1:{transport.socket.getsockname()[1]}")

        def record_sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
            server.sni.append(name)

        context.sni_callback = record_sni
        nursery.start_soon(trio.serve_listeners, _handle, listeners)
        yield server
        nursery.cancel_scope.cancel()


def credentials(server: Server, **changes: Any) -> Credentials:
    material = pki()
    base = Credentials(
        server=server.url,
        namespace="default",
        ca_pem=b"subject=/CN=test-ca (text around the PEM is ignored, as in Go)\n"
        + material.ca_pem,
        insecure_skip_tls_verify=False,
        tls_server_name=SERVER_NAME,
        client_cert_pem=material.client_cert_pem,
        client_key_pem=material.client_key_pem,
        token_source=StaticTokenSource("tls-test-token"),
    )
    return replace(base, **changes)


async def get(creds: Credentials, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    headers = {}
    if creds.token_source is not None:
        headers["authorization"] = await creds.token_source.authorization() or ""
    async with httpx2.AsyncClient(verify=context or creds.ssl_context()) as client:
        response = await client.get(creds.server + "/version", headers=headers)
    assert response.status_code == 200
    return dict(response.json())


def _verification_failed(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, ssl.SSLCertVerificationError):
            return True
        error = error.__cause__ or error.__context__
    return False


async def test_tls_server_name_is_verified_and_sent_whatever_host_is_dialled() -> None:
    async with tls_server() as server:
        answer = await get(credentials(server))
    assert answer == {"cn": "vk-trio", "authorization": "Bearer tls-test-token"}
    assert server.sni == [SERVER_NAME]


async def test_without_tls_server_name_a_certificate_for_another_name_is_refused() -> None:
    async with tls_server() as server:
        with pytest.raises(httpx2.ConnectError) as caught:
            await get(credentials(server, tls_server_name=None))
    assert _verification_failed(caught.value)


async def test_the_system_trust_store_does_not_trust_a_private_ca() -> None:
    async with tls_server() as server:
        with pytest.raises(httpx2.ConnectError) as caught:
            await get(credentials(server, ca_pem=None))
    assert _verification_failed(caught.value)


async def test_insecure_skip_tls_verify_accepts_the_unverifiable_server() -> None:
    async with tls_server() as server:
        answer = await get(
            credentials(server, ca_pem=None, tls_server_name=None, insecure_skip_tls_verify=True)
        )
    assert answer["cn"] == "vk-trio"


async def test_a_certificate_rotated_by_an_exec_plugin_reaches_new_connections(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    material = pki()
    pairs = [
        [material.client_cert_pem.decode(), material.client_key_pem.decode()],
        [material.other_client_cert_pem.decode(), material.other_client_key_pem.decode()],
    ]
    plugin = Plugin(tmp_path)
    path = plugin.kubeconfig({"PLUGIN_CERTS": json.dumps(pairs), "PLUGIN_TTL": "300"})
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path)}
    resolved = await resolve_credentials(kubeconfig=str(path), env=env)
    async with tls_server() as server:
        creds = replace(
            resolved, server=server.url, ca_pem=material.ca_pem, tls_server_name=SERVER_NAME
        )
        context = creds.ssl_context()
        assert (await get(creds, context))["cn"] == "vk-trio"
        mock_clock.jump(290)
        assert creds.token_source is not None
        assert await creds.token_source.authorization() is None  # re-runs the plugin
        assert (await get(creds, context))["cn"] == "vk-trio-rotated"
    assert plugin.runs == 2


def test_an_inline_key_is_loaded_without_leaving_a_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    material = pki()
    creds = Credentials(
        server="https://h",
        namespace="default",
        ca_pem=None,
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        client_cert_pem=material.client_cert_pem,
        client_key_pem=material.client_key_pem,
        token_source=None,
    )
    creds.ssl_context()  # memfd on Linux
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    creds.ssl_context()  # the 0600 temp file fallback
    assert list(tmp_path.iterdir()) == []


def test_a_key_that_does_not_load_is_a_config_error_without_the_key() -> None:
    creds = Credentials(
        server="https://h",
        namespace="default",
        ca_pem=None,
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        client_cert_pem=pki().client_cert_pem,
        client_key_pem=b"-----BEGIN PRIVATE KEY-----\ngarbage-secret\n-----END PRIVATE KEY-----\n",
        token_source=None,
    )
    with pytest.raises(ConfigError, match="cannot be loaded") as caught:
        creds.ssl_context()
    assert "garbage-secret" not in str(caught.value)


def test_a_ca_that_is_not_a_certificate_is_a_config_error() -> None:
    creds = Credentials(
        server="https://h",
        namespace="default",
        ca_pem=b"not a certificate",
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        client_cert_pem=None,
        client_key_pem=None,
        token_source=None,
    )
    with pytest.raises(ConfigError, match="certificate authority"):
        creds.ssl_context()
