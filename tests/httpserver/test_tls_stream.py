"""The server's TLS stream: a conforming trio Stream, and client certificates judged the kubelet's
way. A certificate that OpenSSL verifies against the client CA names the caller; one from
another CA, an expired one, or one not meant for client auth leaves the request answered but
without an identity (the kubelet goes on to the bearer token and answers 401), never a failed
handshake. The CertificateRequest names the client CA, as Go's server does."""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

import pytest
import trio
import trio.testing
from cryptography.x509 import ObjectIdentifier
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import SSL

from tests.certs import Issued, issue
from vk_trio.api.auth import identity_from_cert
from vk_trio.api.tls import server_context
from vk_trio.httpserver import Request, Response, Router, serve
from vk_trio.httpserver.tls_stream import TlsServerStream


def write(
    issued: Issued, directory: Path, stem: str, *, chain: tuple[Issued, ...] = ()
) -> tuple[Path, Path]:
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(issued.cert_pem + b"".join(link.cert_pem for link in chain))
    key.write_bytes(issued.key_pem)
    return cert, key


SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH


def client(
    subject: str,
    issuer: Issued,
    *,
    orgs: tuple[str, ...] = (),
    ca: bool = False,
    usage: ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    expired: bool = False,
) -> Issued:
    return issue(subject, issuer=issuer, orgs=orgs, ca=ca, usage=usage, expired=expired)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    root, stranger = issue("client-ca", ca=True), issue("another-ca", ca=True)
    intermediate = client("intermediate-ca", root, ca=True)
    serving = issue("kubelet", issuer=issue("serving-ca", ca=True), usage=SERVER_AUTH)
    return {
        "root": root,
        "serving": serving,
        "apiserver": client("kube-apiserver-kubelet-client", root, orgs=("kubeadm:admins",)),
        "stranger": client("kube-apiserver-kubelet-client", stranger, orgs=("system:masters",)),
        "expired": client("expired", root, expired=True),
        "server-only": client("server-only", root, usage=SERVER_AUTH),
        "intermediate": intermediate,
        "via-intermediate": client("via-intermediate", intermediate),
    }


def who_router() -> Router:
    routes = Router()

    @routes.route("GET", "/who")
    async def who(request: Request) -> Response:
        identity = identity_from_cert(request.peer) if request.peer else None
        if identity is None:
            return Response.text("nobody")
        return Response.text(f"{identity.user} {','.join(identity.groups)}")

    return routes


def client_context(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


async def who(port: int, cert: tuple[Path, Path] | None) -> str:
    with trio.fail_after(10):
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        stream = trio.SSLStream(tcp, client_context(cert), server_hostname="kubelet")
        async with stream:
            await stream.send_all(b"GET /who HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            answer = b""
            while chunk := await stream.receive_some(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body.decode()


async def test_a_certificate_that_verifies_names_the_caller_and_any_other_leaves_none(
    nursery: trio.Nursery, pki: dict[str, Issued], tmp_path: Path
) -> None:
    serving, root = pki["serving"], pki["root"]
    context = server_context(serving.cert_pem, serving.key_pem, root.cert_pem)
    port = await nursery.start(lambda **kw: serve(who_router(), tls=context, **kw))

    def pair(name: str, *chain: str) -> tuple[Path, Path]:
        return write(pki[name], tmp_path, name, chain=tuple(pki[link] for link in chain))

    assert await who(port, pair("apiserver")) == (
        "kube-apiserver-kubelet-client kubeadm:admins,system:authenticated"
    )
    assert await who(port, pair("via-intermediate", "intermediate")) == (
        "via-intermediate system:authenticated"
    )
    # answered, without an identity: the kubelet's 401 comes from the authenticator after this
    assert await who(port, None) == "nobody"
    assert await who(port, pair("stranger")) == "nobody"
    assert await who(port, pair("expired")) == "nobody"
    assert await who(port, pair("server-only")) == "nobody"
    assert await who(port, pair("via-intermediate")) == "nobody"  # its chain left out


async def test_without_a_client_ca_no_certificate_is_asked_for_or_believed(
    nursery: trio.Nursery, pki: dict[str, Issued], tmp_path: Path
) -> None:
    serving = pki["serving"]
    context = server_context(serving.cert_pem, serving.key_pem, None)
    port = await nursery.start(lambda **kw: serve(who_router(), tls=context, **kw))
    assert await who(port, write(pki["apiserver"], tmp_path, "apiserver")) == "nobody"


async def test_the_certificate_request_names_the_client_ca(
    nursery: trio.Nursery, pki: dict[str, Issued]
) -> None:
    """Go's TLS client sends its certificate only when its issuer is among these names: a
    kubectl with another CA's certificate then sends none and gets the 401."""
    serving, root = pki["serving"], pki["root"]
    context = server_context(serving.cert_pem, serving.key_pem, root.cert_pem)
    port = await nursery.start(lambda **kw: serve(who_router(), tls=context, **kw))

    def ask() -> list[str]:
        client = SSL.Context(SSL.TLS_CLIENT_METHOD)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.settimeout(None)  # pyOpenSSL wants a blocking socket; the kernel bounds reads
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
            connection = SSL.Connection(client, raw)
            connection.set_connect_state()
            connection.do_handshake()
            names = connection.get_client_ca_list(as_cryptography=True)
            connection.shutdown()
            return [name.rfc4514_string() for name in names]

    assert await trio.to_thread.run_sync(ask) == ["CN=client-ca"]


def _tls_pair(
    maker: object, server: SSL.Context, client: ssl.SSLContext
) -> tuple[TlsServerStream, trio.SSLStream[trio.abc.Stream]]:
    assert callable(maker)
    near, far = maker()
    return TlsServerStream(near, server), trio.SSLStream(far, client, server_hostname="kubelet")


async def test_the_stream_conforms_to_trios_two_way_stream_contract(
    pki: dict[str, Issued],
) -> None:
    serving = pki["serving"]
    context = server_context(serving.cert_pem, serving.key_pem, None)
    # TLS 1.3 sends session tickets after the handshake, which a lockstep (unbuffered) pair
    # cannot carry while nobody reads: the clogged pair speaks TLS 1.2
    tls13, tls12 = client_context(None), client_context(None)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2

    async def handshaken(
        maker: object, client: ssl.SSLContext
    ) -> tuple[TlsServerStream, trio.SSLStream[trio.abc.Stream]]:
        server_side, client_side = _tls_pair(maker, context, client)
        async with trio.open_nursery() as both:
            both.start_soon(server_side.do_handshake)
            both.start_soon(client_side.do_handshake)
        return server_side, client_side

    async def streams() -> tuple[TlsServerStream, trio.SSLStream[trio.abc.Stream]]:
        return await handshaken(trio.testing.memory_stream_pair, tls13)

    async def clogged() -> tuple[TlsServerStream, trio.SSLStream[trio.abc.Stream]]:
        return await handshaken(trio.testing.lockstep_stream_pair, tls12)

    with trio.fail_after(60):
        await trio.testing.check_two_way_stream(streams, clogged)


async def test_a_client_that_speaks_no_tls_or_no_shared_cipher_ends_its_own_connection_only(
    nursery: trio.Nursery, pki: dict[str, Issued]
) -> None:
    serving = pki["serving"]
    context = server_context(serving.cert_pem, serving.key_pem, None)
    port = await nursery.start(lambda **kw: serve(who_router(), tls=context, **kw))
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", port) as plain:
            await plain.send_all(b"GET /who HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = b""
            while chunk := await plain.receive_some(65536):
                answer += chunk
    assert b"HTTP/1.1" not in answer  # closed, not answered in plain text
    # a TLS client with nothing in common hears why (a handshake_failure alert), not just EOF
    legacy = client_context(None)
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    legacy.set_ciphers("AES128-SHA")  # RSA key exchange: the server offers only ECDHE
    with trio.fail_after(10), pytest.raises(trio.BrokenResourceError) as refused:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with trio.SSLStream(tcp, legacy, server_hostname="kubelet") as stream:
            await stream.do_handshake()
    assert "HANDSHAKE_FAILURE" in str(refused.value.__cause__).upper()
    assert await who(port, None) == "nobody"
