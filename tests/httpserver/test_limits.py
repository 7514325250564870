"""The server's limits: header size (431), a client that sends nothing, the connection cap (idle
connections give way, busy ones do not), a streamed response cancelled when its client leaves,
and EMFILE met with a back-off and one log line instead of a traceback storm."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from vk_trio.httpserver import Limits, Request, Response, Router, ServerStats, serve
from vk_trio.httpserver.server import _accept_loop, _Server, _Table


def router(release: trio.Event | None = None, closed: list[str] | None = None) -> Router:
    routes = Router()

    @routes.route("GET", "/healthz")
    async def healthz(_request: Request) -> Response:
        return Response.text("ok")

    @routes.route("GET", "/busy")
    async def busy(_request: Request) -> Response:
        assert release is not None
        await release.wait()
        return Response.text("done")

    @routes.route("GET", "/follow")
    async def follow(_request: Request) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            try:
                yield b"first\n"
                await trio.sleep_forever()
            finally:
                assert closed is not None
                closed.append("closed")

        return Response(stream=lines())

    return routes


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def request(stream: trio.SocketStream, path: str, *, extra: bytes = b"") -> bytes:
    await stream.send_all(f"GET {path} HTTP/1.1\r\nhost: x\r\n".encode() + extra + b"\r\n")
    data = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def test_a_head_beyond_the_limit_is_refused_with_431(nursery: trio.Nursery) -> None:
    stats = ServerStats()
    limits = Limits(max_header_bytes=4096)
    port = await nursery.start(lambda **kw: serve(router(), limits=limits, stats=stats, **kw))
    async with await connect(port) as stream:
        answer = await request(stream, "/healthz", extra=b"x-big: " + b"a" * 8192 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert stats.rejected == 1
    async with await connect(port) as stream:
        fine = await request(stream, "/healthz", extra=b"x-small: a\r\n")
    assert fine.startswith(b"HTTP/1.1 200 ")


async def test_a_client_that_sends_nothing_is_closed_after_the_header_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    stats = ServerStats()
    limits = Limits(header_timeout=10.0)
    port = await nursery.start(lambda **kw: serve(router(), limits=limits, stats=stats, **kw))
    async with await connect(port) as stream:
        started = trio.current_time()
        with trio.fail_after(60):
            assert await stream.receive_some(10) == b""
    assert 10.0 <= trio.current_time() - started < 11.0
    assert stats.timeouts == 1


async def test_at_the_cap_idle_connections_give_way_so_a_probe_gets_in(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    stats = ServerStats()
    limits = Limits(max_connections=20)
    port = await nursery.start(lambda **kw: serve(router(), limits=limits, stats=stats, **kw))
    idle = []
    for _ in range(60):
        idle.append(await connect(port))
        await trio.sleep(0.1)  # each waits a while: the longest-idle give way after 1 s
    await trio.sleep(1.0)
    for _ in range(3):
        async with await connect(port) as probe:
            answer = await request(probe, "/healthz")
        assert answer.startswith(b"HTTP/1.1 200 ")
    assert stats.open <= 20
    assert stats.evicted >= 40
    for stream in idle:
        await stream.aclose()


async def test_at_the_cap_busy_connections_stay_and_a_new_one_is_refused(
    nursery: trio.Nursery,
) -> None:
    stats = ServerStats()
    release = trio.Event()
    limits = Limits(max_connections=2)
    port = await nursery.start(
        lambda **kw: serve(router(release), limits=limits, stats=stats, **kw)
    )
    busy = [await connect(port) for _ in range(2)]
    for stream in busy:
        await stream.send_all(b"GET /busy HTTP/1.1\r\nhost: x\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    async with await connect(port) as late:
        with trio.fail_after(5):
            assert await late.receive_some(10) == b""
    assert stats.refused == 1
    release.set()
    for stream in busy:
        assert (await request(stream, "/healthz")).startswith(b"HTTP/1.1 200")
        await stream.aclose()


async def test_a_streamed_response_is_closed_as_soon_as_its_client_goes_away(
    nursery: trio.Nursery,
) -> None:
    closed: list[str] = []
    port = await nursery.start(lambda **kw: serve(router(closed=closed), **kw))
    stream = await connect(port)
    head = await request(stream, "/follow")
    assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" in head.lower()
    await stream.aclose()
    with trio.fail_after(5):
        while not closed:
            await trio.sleep(0.01)
    assert closed == ["closed"]


class _Exhausted:
    """A listener whose accept fails with EMFILE ``failures`` times, then waits forever."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def accept(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(errno.EMFILE, "Too many open files")
        await trio.sleep_forever()


async def test_emfile_backs_off_and_logs_once_without_a_traceback(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vk_trio.httpserver")
    stats = ServerStats()
    server = _Server(handler=router(), tls=None, limits=Limits(), table=_Table(stats))
    listener = _Exhausted(failures=30)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_accept_loop, server, listener, nursery)  # type: ignore[arg-type]
        await trio.sleep(9.0)
        nursery.cancel_scope.cancel()
    assert stats.accept_errors == listener.calls < 30  # backed off: fewer tries than 9 s / 10 ms
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is None
    assert "EMFILE" in caplog.records[0].getMessage()
