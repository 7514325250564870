"""One connection's failure ends that connection only: a client that resets the connection in
the middle of a streamed response, or a streamed body that raises, never takes the server (and
with it every other client, or the agent) down."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator

import pytest
import trio

from vk_trio.httpserver import Request, Response, Router, ServerStats, serve

CHUNK = b"x" * 65536


def router() -> Router:
    routes = Router()

    @routes.route("GET", "/healthz")
    async def healthz(_request: Request) -> Response:
        return Response.text("ok")

    @routes.route("GET", "/flood")
    async def flood(_request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            while True:
                yield CHUNK

        return Response(stream=chunks())

    @routes.route("GET", "/broken")
    async def broken(_request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            raise RuntimeError("the source of the stream broke")

        return Response(stream=chunks())

    return routes


async def get(port: int, path: str) -> bytes:
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()
        )
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
        return data


async def test_clients_that_reset_in_the_middle_of_a_stream_end_only_their_connections(
    nursery: trio.Nursery,
) -> None:
    stats = ServerStats()
    port = await nursery.start(lambda **kw: serve(router(), stats=stats, **kw))
    for _ in range(20):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /flood HTTP/1.1\r\nhost: x\r\n\r\n")
        with trio.fail_after(10):
            await stream.receive_some(65536)
        # close with RST (linger 0) while the server is writing
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
    answer = await get(port, "/healthz")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")
    with trio.fail_after(10):
        while stats.open > 0:
            await trio.sleep(0.01)
    assert stats.failed == 0  # a client going away is ordinary, not a failure


async def test_a_streamed_body_that_raises_ends_its_connection_and_is_counted(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    stats = ServerStats()
    port = await nursery.start(lambda **kw: serve(router(), stats=stats, **kw))
    answer = await get(port, "/broken")
    assert answer.startswith(b"HTTP/1.1 200 ") and b"first\n" in answer
    assert not answer.endswith(b"0\r\n\r\n")  # no clean end of the chunked body: it was cut
    assert stats.failed == 1
    assert "a connection ended with an unexpected RuntimeError" in caplog.text
    assert "the source of the stream broke" not in caplog.text  # messages may carry secrets
    assert (await get(port, "/healthz")).endswith(b"ok")
