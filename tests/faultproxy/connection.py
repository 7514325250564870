"""The client side of a fault proxy connection: h11's state machine over a TLS stream.

h11 does no I/O, so this is the small amount of glue that feeds it bytes from trio and writes
what it produces; the proxy itself then deals only in requests, body chunks and responses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import h11
import trio

from tests.faultproxy.faults import RequestInfo

MAX_RECEIVE = 65536


class ClientConnection:
    """One client connection: an h11 state machine over a TLS stream."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER)

    async def next_request(self) -> tuple[h11.Request, RequestInfo] | None:
        """The next request's head, or None when the client hung up between requests."""
        event = await self.next_event()
        if not isinstance(event, h11.Request):
            return None
        path, _, query = event.target.decode("ascii").partition("?")
        method = event.method.decode("ascii")
        return event, RequestInfo(method=method, path=path, query=query, at=trio.current_time())

    def start_next_cycle(self) -> bool:
        """Get ready for another request on this connection; False if it cannot carry one."""
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        return True

    async def next_event(self) -> h11.Event | None:
        """The next complete h11 event; None once h11 pauses (after an Upgrade or CONNECT)."""
        while True:
            event = self.h11.next_event()
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return None
            self.h11.receive_data(bytes(await self.stream.receive_some(MAX_RECEIVE)))

    @staticmethod
    def request_has_body(request: h11.Request) -> bool:
        headers = {k.lower(): v for k, v in request.headers}
        return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"

    async def request_body(self) -> AsyncGenerator[bytes, None]:
        while self.h11.their_state is h11.SEND_BODY:
            event = await self.next_event()
            if event is None:
                return
            if isinstance(event, h11.Data):
                yield bytes(event.data)

    async def drain_request(self) -> None:
        async with contextlib.aclosing(self.request_body()) as body:
            async for _ in body:
                pass

    async def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            await self.stream.send_all(data)

    async def send_whole(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await self.send(h11.Response(status_code=status, headers=headers))
        await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())
