"""KubeClient.swap_access over real TLS: after a certificate renewal, new requests present the new
client certificate, a stream opened before it keeps flowing on the old connection, and the old
connection pool closes once that stream ends.

The server is a few lines of trio + ssl on loopback that records which client certificate each
request came with (the API server authenticates per connection, so this is what matters).
"""

from __future__ import annotations

import dataclasses
import hashlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import trio

from vk_trio.kube.auth import Credentials
from vk_trio.kube.certs import PrivateKey, self_signed
from vk_trio.kube.client import KubeClient


@dataclasses.dataclass
class Pair:
    cert: bytes
    key: bytes

    @property
    def fingerprint(self) -> str:
        der = ssl.PEM_cert_to_DER_cert(self.cert.decode())
        return hashlib.sha256(der).hexdigest()


def pair(name: str, *, usages: tuple[str, ...], sans: tuple[str, ...] = ()) -> Pair:
    key = PrivateKey.generate()
    cert = self_signed(key, common_name=name, usages=usages, sans=sans)
    return Pair(cert, key.to_pem())  # self-signed: its own trust anchor, so names must differ


@dataclasses.dataclass
class Server:
    port: int = 0
    seen: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, client cert)
    release: trio.Event = dataclasses.field(default_factory=trio.Event)


def server_context(server_pair: Pair, clients: list[Pair], scratch: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (scratch / "s.crt").write_bytes(server_pair.cert)
    (scratch / "s.key").write_bytes(server_pair.key)
    context.load_cert_chain(scratch / "s.crt", scratch / "s.key")
    context.load_verify_locations(cadata="".join(c.cert.decode() for c in clients))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def handle(stream: trio.SSLStream[trio.SocketStream], server: Server) -> None:
    await stream.do_handshake()
    der = stream.getpeercert(binary_form=True) or b""
    who = hashlib.sha256(der).hexdigest()
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        path = head.split(b" ")[1].decode()
        server.seen.append((path.split("?")[0], who))
        if path.startswith("/stream"):
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n"
            )
            await server.release.wait()
            await stream.send_all(b"7\r\nsecond\n\r\n0\r\n\r\n")
        else:
            body = b'{"kind":"Status"}'
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )


@asynccontextmanager
async def tls_server(context: ssl.SSLContext) -> AsyncIterator[Server]:
    server = Server()
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        server.port = listeners[0].socket.getsockname()[1]

        async def serve() -> None:
            async with listeners[0]:
                while True:
                    sock = await listeners[0].accept()
                    tls = trio.SSLStream(sock, context, server_side=True)
                    nursery.start_soon(_quietly, handle, tls, server)

        nursery.start_soon(serve)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


async def _quietly(fn: object, tls: trio.SSLStream[trio.SocketStream], server: Server) -> None:
    try:
        await fn(tls, server)  # type: ignore[operator]
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(tls)


def closed(pool: httpx2.AsyncClient) -> bool:
    return pool.is_closed


def credentials(port: int, ca: Pair, client: Pair) -> Credentials:
    return Credentials(
        server=f"https://127.0.0.1:{port}",
        namespace="default",
        ca_pem=ca.cert,
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        client_cert_pem=client.cert,
        client_key_pem=client.key,
        token_source=None,
    )


@dataclasses.dataclass
class Swap:
    server: Server
    client: KubeClient
    served: Pair
    old: Pair
    new: Pair

    async def to_new(self) -> None:
        await self.client.swap_access(credentials(self.server.port, self.served, self.new))


@asynccontextmanager
async def client_before_a_renewal(tmp_path: Path) -> AsyncIterator[Swap]:
    """A client presenting ``old`` to the recording server, ready to swap to ``new``."""
    served = pair("server", usages=("server auth",), sans=("127.0.0.1",))
    old = pair("system:node:n (before)", usages=("client auth",))
    new = pair("system:node:n (renewed)", usages=("client auth",))
    context = server_context(served, [old, new], tmp_path)
    async with (
        tls_server(context) as server,
        KubeClient(credentials(server.port, served, old)) as client,
    ):
        yield Swap(server, client, served, old, new)


async def test_new_requests_present_the_renewed_certificate_and_a_stream_keeps_flowing(
    tmp_path: Path,
) -> None:
    async with client_before_a_renewal(tmp_path) as swap:
        client = swap.client
        await client.request("GET", "/before")
        first_pool = client._http
        async with client.stream("/stream") as response:
            lines = response.aiter_lines()
            assert await anext(lines) == "first"
            await swap.to_new()
            await client.request("GET", "/after")
            assert not closed(first_pool)  # the stream still uses it
            swap.server.release.set()
            assert await anext(lines) == "second"
        assert closed(first_pool)  # closed with its last stream
        await client.request("GET", "/later")
    old, new = swap.old.fingerprint, swap.new.fingerprint
    assert swap.server.seen == [
        ("/before", old),
        ("/stream", old),
        ("/after", new),
        ("/later", new),
    ]


async def test_a_swap_with_nothing_in_flight_closes_the_old_pool_at_once(tmp_path: Path) -> None:
    async with client_before_a_renewal(tmp_path) as swap:
        await swap.client.request("GET", "/before")
        first_pool = swap.client._http
        await swap.to_new()
        assert closed(first_pool)
        await swap.client.request("GET", "/after")
    seen = [who for _, who in swap.server.seen]
    assert seen == [swap.old.fingerprint, swap.new.fingerprint]
