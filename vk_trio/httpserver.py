"""A small HTTP/1.1 server on trio and h11, for everything vk-trio serves.

vk-trio serves HTTP in a few places: /healthz, /readyz and /metrics of the daemon, the kubelet
API, and the simulated clouds (vk_trio/sim) that stand in for RunPod and Vast.ai. None of these
justifies a web framework in a single-file daemon, and h11 already arrives with httpx2, so this
module gives them one server: a router of (method, path pattern) → async handler, streaming
responses (watch-like and Server-Sent Events bodies) and optional TLS.

It sits at the bottom layer (beside config, errors, logs) and imports nothing of the agent, so the
simulators can use it too.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio

MAX_BODY = 16 * 1024 * 1024
_READ_CHUNK = 65536


@dataclass(kw_only=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern
    remote: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(kw_only=True)
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None  # when set, sent chunked, flushed per item

    @classmethod
    def json(cls, data: Any, *, status: int = 200, headers: Mapping[str, str] = {}) -> Response:
        payload = data if isinstance(data, bytes) else json.dumps(data).encode()
        return cls(
            status=status,
            headers={"content-type": "application/json", **headers},
            body=payload,
        )

    @classmethod
    def text(cls, text: str, *, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(
            status=status,
            headers={"content-type": f"{content_type}; charset=utf-8"},
            body=text.encode(),
        )


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Routes by method and a path pattern with ``{name}`` segments (``[^/]+``)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorate

    async def __call__(self, request: Request) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                request.params = {k: unquote(v) for k, v in match.groupdict().items()}
                return await handler(request)
        if allowed:
            return Response.json({"error": "method not allowed"}, status=405)
        return Response.json({"error": f"no route for {request.path}"}, status=404)


async def serve(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``await nursery.start(serve, handler)`` returns the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host or None, backlog=1024)
    bound: int = listeners[0].socket.getsockname()[1]
    stream_listeners: list[trio.abc.Listener[Any]] = list(listeners)
    if ssl_context is not None:
        stream_listeners = [
            trio.SSLListener(lst, ssl_context, https_compatible=True) for lst in listeners
        ]
    async with trio.open_nursery() as nursery:
        for listener in stream_listeners:
            nursery.start_soon(trio.serve_listeners, _connection_handler(handler), [listener])
        task_status.started(bound)


def _connection_handler(handler: Handler) -> Callable[[trio.abc.Stream], Awaitable[None]]:
    async def on_connection(stream: trio.abc.Stream) -> None:
        try:
            await _serve_connection(stream, handler)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        except ssl.SSLError:
            pass
        finally:
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await stream.aclose()

    return on_connection


async def _serve_connection(stream: trio.abc.Stream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
    remote = _peer(stream)
    while True:
        request = await _read_request(stream, conn, remote)
        if request is None:
            return
        try:
            response = await handler(request)
        except Exception as exc:  # a handler bug answers 500 instead of killing the server
            response = Response.json({"error": f"internal error: {type(exc).__name__}"}, status=500)
        await _write_response(stream, conn, response, head=request.method == "HEAD")
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


def _peer(stream: trio.abc.Stream) -> str:
    inner: Any = getattr(stream, "transport_stream", stream)
    sock = getattr(inner, "socket", None)
    try:
        host, port = sock.getpeername()[:2] if sock is not None else ("", 0)
    except OSError:
        return ""
    return f"{host}:{port}"


async def _next_event(stream: trio.abc.Stream, conn: h11.Connection) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await stream.receive_some(_READ_CHUNK)
        conn.receive_data(bytes(data))


async def _read_request(
    stream: trio.abc.Stream, conn: h11.Connection, remote: str
) -> Request | None:
    event = await _next_event(stream, conn)
    if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
        return None
    if not isinstance(event, h11.Request):
        return None
    body = bytearray()
    while True:
        part = await _next_event(stream, conn)
        if isinstance(part, h11.Data):
            body += part.data
            if len(body) > MAX_BODY:
                raise h11.LocalProtocolError("request body too large")
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            return None
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    target = urlsplit(event.target.decode("latin-1"))
    return Request(
        method=event.method.decode("ascii").upper(),
        path=unquote(target.path) or "/",
        query=parse_qs(target.query, keep_blank_values=True),
        headers=headers,
        body=bytes(body),
        remote=remote,
    )


async def _write_response(
    stream: trio.abc.Stream, conn: h11.Connection, response: Response, *, head: bool
) -> None:
    headers = [(k.lower(), v) for k, v in response.headers.items()]
    if response.stream is None:
        headers.append(("content-length", str(len(response.body))))
    else:
        headers.append(("transfer-encoding", "chunked"))
    await stream.send_all(conn.send(h11.Response(status_code=response.status, headers=headers)))
    if head:
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return
    if response.stream is None:
        if response.body:
            await stream.send_all(conn.send(h11.Data(data=response.body)))
    else:
        async for chunk in response.stream:
            if chunk:
                await stream.send_all(conn.send(h11.Data(data=chunk)))
    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
