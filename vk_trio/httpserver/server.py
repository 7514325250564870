"""The accept loop and the connections: HTTP/1.1 on trio and h11, bounded everywhere.

Limits (``Limits``), and why each exists:

* request head at most ``max_header_bytes`` (32 KiB; Go's net/http allows 1 MiB, nginx 32 KiB
  in four 8 KiB buffers): a client cannot make a connection hold megabytes; larger gets 431;
* body at most ``max_body_bytes`` (413): the agent's endpoints take no bodies worth a megabyte;
* a new connection must finish its TLS handshake and request head within ``header_timeout``
  (10 s), and a kept-alive one must start its next request within ``idle_timeout`` (90 s, Go's
  client keeps idle connections that long) and finish its head within ``header_timeout``: a client
  that sends nothing is closed;
* one write may wait at most ``write_timeout`` for a client that does not read;
* at most ``max_connections`` at once (4,096 by default: a flood of 2,000 idle connections
  fits, and the head timeout reclaims them). At the cap, a new connection closes the
  longest-idle one (waiting for its next request for at least a second) to make room; when none
  is, the new one is closed at once;
* ``accept`` failing for lack of file descriptors (EMFILE, ENFILE) or memory closes the
  longest-idle connection and backs off from 10 ms to 1 s, with one log line per 10 s and no
  traceback (trio's serve_listeners logs a traceback every 100 ms).

A streamed response (``Response.stream``) runs next to a watcher of the connection: when the
client goes away the stream is cancelled and closed at once, so whatever feeds it (a cloud's log
stream) is closed too. Streamed responses end the connection (``connection: close``).
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio
from OpenSSL import SSL

from vk_trio.httpserver.messages import Handler, PeerSubject, Request, Response
from vk_trio.httpserver.tls_stream import TlsServerStream
from vk_trio.logs import get_logger

_log = get_logger("vk_trio.httpserver")
_READ_CHUNK = 65536
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_LOG_EVERY = 10.0
# At the cap, an idle connection gives way only after this long: clients that reconnect at
# once cannot make connections evict each other in a loop that eats the CPU.
EVICT_AFTER_IDLE = 1.0
# A write that failed or timed out: the connection is over (_connection counts the timeouts)
_CLIENT_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError)

TlsSource = SSL.Context | Callable[[], SSL.Context]


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_header_bytes: int = 32 * 1024
    max_body_bytes: int = 1024 * 1024
    header_timeout: float = 10.0
    idle_timeout: float = 90.0
    body_timeout: float = 30.0
    write_timeout: float = 60.0
    max_connections: int = 4096


@dataclass
class ServerStats:
    """Counters for /metrics and tests."""

    open: int = 0
    accepted: int = 0
    evicted: int = 0  # idle connections closed to make room for a new one
    refused: int = 0  # new connections closed at once: at the cap, none idle
    accept_errors: int = 0  # EMFILE and friends
    timeouts: int = 0  # handshake, head, body or write too slow
    rejected: int = 0  # head or body too large, or not HTTP
    failed: int = 0  # ended by an unexpected error (a streamed body's bug): that connection only


class _Tracked:
    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = trio.CancelScope()


class _Table:
    """Open connections, and which of them are idle (oldest first)."""

    def __init__(self, stats: ServerStats) -> None:
        self.stats = stats
        self.open: set[_Tracked] = set()
        self.idle: OrderedDict[_Tracked, float] = OrderedDict()  # → idle since (trio time)

    def evict_idle(self, *, min_idle: float = 0.0) -> bool:
        """Close the longest-idle connection if it has been idle ``min_idle`` seconds."""
        if not self.idle:
            return False
        oldest, since = next(iter(self.idle.items()))
        if trio.current_time() - since < min_idle:
            return False
        del self.idle[oldest]
        oldest.scope.cancel()
        self.stats.evicted += 1
        return True

    def set_idle(self, conn: _Tracked, idle: bool) -> None:
        if idle:
            self.idle[conn] = trio.current_time()
            self.idle.move_to_end(conn)
        else:
            self.idle.pop(conn, None)


async def serve(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: TlsSource | None = None,
    limits: Limits | None = None,
    stats: ServerStats | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``await nursery.start(serve, handler)`` returns the bound port.

    ``tls`` is a pyOpenSSL context (tls_stream.py says why not ``ssl``) or a function returning
    one: it is called for every new connection, so a certificate that changed on disk serves new
    connections without a restart.
    """
    limits = limits or Limits()
    stats = stats if stats is not None else ServerStats()
    listeners = await trio.open_tcp_listeners(port, host=host or None, backlog=4096)
    bound: int = listeners[0].socket.getsockname()[1]
    server = _Server(handler=handler, tls=tls, limits=limits, table=_Table(stats))
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(server.accept_loop, listener, nursery)
        task_status.started(bound)


@dataclass(frozen=True, kw_only=True)
class _Server:
    handler: Handler
    tls: TlsSource | None
    limits: Limits
    table: _Table

    async def accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            await _accept_loop(self, listener, nursery)

    async def connection(self, raw: trio.SocketStream, tracked: _Tracked) -> None:
        await _connection(self, raw, tracked)


async def _accept_loop(
    server: _Server, listener: trio.SocketListener, nursery: trio.Nursery
) -> None:
    table, limits = server.table, server.limits
    delay, logged_at = 0.01, -_ACCEPT_LOG_EVERY
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _CAPACITY_ERRNOS:
                raise
            table.stats.accept_errors += 1
            table.evict_idle()
            now = trio.current_time()
            if now - logged_at >= _ACCEPT_LOG_EVERY:
                logged_at = now
                _log.warning(
                    "accept failed (%s, %d connections open): backing off",
                    errno.errorcode.get(exc.errno or 0, exc.errno),
                    len(table.open),
                )
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        delay = 0.01
        at_cap = len(table.open) >= limits.max_connections
        if at_cap and not table.evict_idle(min_idle=EVICT_AFTER_IDLE):
            table.stats.refused += 1
            await trio.aclose_forcefully(stream)
            continue
        tracked = _Tracked()
        table.open.add(tracked)
        table.stats.accepted += 1
        table.stats.open = len(table.open)
        nursery.start_soon(server.connection, stream, tracked)


async def _connection(server: _Server, raw: trio.SocketStream, tracked: _Tracked) -> None:
    tls, limits, table = server.tls, server.limits, server.table
    stream: trio.abc.Stream = raw
    try:
        with tracked.scope:
            remote = _peer(raw)
            peer: PeerSubject | None = None
            if tls is not None:
                context = tls if isinstance(tls, SSL.Context) else tls()
                stream = tls_stream = TlsServerStream(raw, context)
                table.set_idle(tracked, True)  # a handshake that never comes is evictable
                with trio.fail_after(limits.header_timeout):
                    await tls_stream.do_handshake()
                peer = tls_stream.peer_subject()
            await _serve_requests(server, stream, tracked, remote=remote, peer=peer)
    except trio.TooSlowError:
        table.stats.timeouts += 1
    except _Rejected:
        table.stats.rejected += 1
    except (
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        h11.ProtocolError,
        OSError,
    ):
        pass
    except Exception as exc:  # that connection's end, never the server's: it runs every other one
        table.stats.failed += 1
        _log.warning("a connection ended with an unexpected %s", _kinds(exc))
    finally:
        table.open.discard(tracked)
        table.idle.pop(tracked, None)
        table.stats.open = len(table.open)
        with trio.move_on_after(1) as scope:  # TLS: our close_notify, if the client takes it
            scope.shield = True
            await stream.aclose()


def _kinds(exc: BaseException) -> str:
    """The exception's type, or its leaves' types for a group (messages may carry secrets)."""
    if isinstance(exc, BaseExceptionGroup):
        return ", ".join(_kinds(inner) for inner in exc.exceptions)
    return type(exc).__name__


class _Rejected(Exception):
    """The client sent something we refuse (too large, not HTTP); answered if possible."""


async def _serve_requests(
    server: _Server,
    stream: trio.abc.Stream,
    tracked: _Tracked,
    *,
    remote: str,
    peer: PeerSubject | None,
) -> None:
    handler, limits, table = server.handler, server.limits, server.table
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
    wait = limits.header_timeout
    while True:
        table.set_idle(tracked, True)
        request = await _read_request(stream, conn, limits, first_wait=wait)
        table.set_idle(tracked, False)
        if request is None:
            return
        request.remote, request.peer = remote, peer
        try:
            response = await handler(request)
        except Exception as exc:  # a handler bug answers 500 instead of killing the server
            response = Response.json({"error": f"internal error: {type(exc).__name__}"}, status=500)
        await _write_response(stream, conn, response, request=request, limits=limits)
        if response.stream is not None or conn.our_state is h11.MUST_CLOSE:
            return
        if conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return
        wait = limits.idle_timeout


async def _next_event(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    *,
    deadline: float,
    then: float | None = None,
    head_limit: int | None = None,
) -> Any:
    """The next h11 event; reading must finish by ``deadline``. With ``then``, the first bytes
    move the deadline to ``then`` seconds from their arrival (idle wait, then a head timeout).
    With ``head_limit``, a request head longer than that is refused (h11 only bounds what it
    holds unparsed, so a long head that arrives in one read would pass it)."""
    received = 0
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            if head_limit is not None and isinstance(event, h11.Request):
                unread = len(conn.trailing_data[0])
                if received - unread > head_limit:
                    raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
            return event
        if head_limit is not None and received > head_limit:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        with trio.fail_at(deadline):
            data = await stream.receive_some(_READ_CHUNK)
        received += len(data)
        if then is not None and data:
            deadline, then = trio.current_time() + then, None
        conn.receive_data(bytes(data))


async def _read_request(
    stream: trio.abc.Stream, conn: h11.Connection, limits: Limits, *, first_wait: float
) -> Request | None:
    now = trio.current_time()
    try:
        event = await _next_event(
            stream,
            conn,
            deadline=now + first_wait,
            then=limits.header_timeout,
            head_limit=limits.max_header_bytes,
        )
    except h11.RemoteProtocolError as exc:
        await _refuse(stream, conn, exc.error_status_hint)
        raise _Rejected from exc
    if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
        return None
    if not isinstance(event, h11.Request):
        return None
    declared = dict(event.headers).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        await _refuse(stream, conn, 413)
        raise _Rejected
    body = bytearray()
    deadline = trio.current_time() + limits.body_timeout
    while True:
        part = await _next_event(stream, conn, deadline=deadline)
        if isinstance(part, h11.Data):
            body += part.data
            if len(body) > limits.max_body_bytes:
                await _refuse(stream, conn, 413)
                raise _Rejected
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
    )


async def _refuse(stream: trio.abc.Stream, conn: h11.Connection, status: int) -> None:
    """Answer a request we will not read (too large, malformed) and let the caller close."""
    try:
        data = conn.send(
            h11.Response(
                status_code=status, headers=[("connection", "close"), ("content-length", "0")]
            )
        )
        data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError:
        return
    with trio.move_on_after(1):
        await stream.send_all(data)


async def _send(stream: trio.abc.Stream, data: bytes | None, limits: Limits) -> None:
    if data:
        with trio.fail_after(limits.write_timeout):
            await stream.send_all(data)


async def _write_response(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    response: Response,
    *,
    request: Request,
    limits: Limits,
) -> None:
    headers = [(k.lower(), v) for k, v in response.headers.items()]
    if response.stream is None:
        headers.append(("content-length", str(len(response.body))))
    else:
        headers += [("transfer-encoding", "chunked"), ("connection", "close")]
    await _send(
        stream, conn.send(h11.Response(status_code=response.status, headers=headers)), limits
    )
    if request.method == "HEAD":
        if response.stream is not None:
            await response.stream.aclose()  # type: ignore[attr-defined]
        await _send(stream, conn.send(h11.EndOfMessage()), limits)
        return
    if response.stream is None:
        await _send(
            stream, conn.send(h11.Data(data=response.body)) if response.body else None, limits
        )
        await _send(stream, conn.send(h11.EndOfMessage()), limits)
        return
    await _stream_body(stream, conn, response, limits)


async def _stream_body(
    stream: trio.abc.Stream, conn: h11.Connection, response: Response, limits: Limits
) -> None:
    """Send the chunks while watching the client: gone → the stream is cancelled and closed."""
    body = response.stream
    assert body is not None
    client_gone: Exception | None = None  # raised bare after the nursery, not in a group
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_closed, stream, nursery.cancel_scope)
            try:
                async for chunk in body:
                    if chunk:
                        await _send(stream, conn.send(h11.Data(data=chunk)), limits)
                await _send(stream, conn.send(h11.EndOfMessage()), limits)
            except _CLIENT_GONE as exc:
                client_gone = exc
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()
    if client_gone is not None:
        raise client_gone


async def _cancel_when_closed(stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
    """Read until the client closes its side (anything it sends meanwhile is dropped: the
    connection ends with this response), then cancel ``scope``."""
    received = 0
    try:
        while True:
            data = await stream.receive_some(_READ_CHUNK)
            if not data:
                break
            received += len(data)
            if received > _READ_CHUNK:
                break
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    scope.cancel()


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return ""
    return f"{host}:{port}"
