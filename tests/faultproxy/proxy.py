"""An HTTPS reverse proxy in front of kube-apiserver that tests use to break things on purpose.

The agent's hardest code paths are its reactions to a misbehaving API server: throttling with
Retry-After, 500s, conflicts, watches that die or expire. The real control plane does these
rarely and never on cue, so tests point the agent at this proxy and arm faults at the moment
they want them. It runs as a trio task in the test's own loop (no threads, no subprocess),
speaks HTTP/1.1 with h11 on the server side and forwards with httpx2, streaming bodies both
ways so a watch flows through event by event. Client certificates end at the proxy, so
requests through it authenticate with a bearer token (the control plane's static token).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import h11
import httpx2
import trio

from tests.faultproxy import faults
from tests.faultproxy.connection import ClientConnection
from tests.faultproxy.faults import FailRule, Faults, Match, RequestInfo, WatchErrorRule

HOP_BY_HOP = frozenset(
    b"connection keep-alive proxy-authenticate proxy-authorization te trailer "
    b"transfer-encoding upgrade host".split()
)


class _CutConnection(Exception):
    """drop_watches() ended this watch: close the connection without finishing the body."""


class FaultProxy:
    """The proxy's controls. Build it with `FaultProxy.start(...)` or `nursery.start(serve)`."""

    def __init__(self, *, upstream: httpx2.AsyncClient, url: str) -> None:
        self.url = url
        self.faults = Faults()
        self._upstream = upstream
        self._watches: set[_Watch] = set()

    # --- controls -------------------------------------------------------------------------

    def drop_watches(self, *, graceful: bool = False) -> int:
        """End every open watch now: cut the connection, or end the body cleanly if graceful.

        Returns how many watches were open.
        """
        for watch in self._watches:
            watch.drop(graceful=graceful)
        return len(self._watches)

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        retry_after: int | None = None,
        body: bytes | None = None,
        match: Match | None = None,
    ) -> None:
        """Answer the next `n` requests (those `match` accepts) with `status`, not forwarded."""
        payload = body if body is not None else faults.status_json(status, retry_after=retry_after)
        self.faults.rules.append(
            FailRule(remaining=n, status=status, body=payload, retry_after=retry_after, match=match)
        )

    def set_delay(self, seconds: float) -> None:
        """Hold every request this long before forwarding or failing it."""
        self.faults.delay = seconds

    def inject_watch_error_410(self, n: int = 1, *, match: Match | None = None) -> None:
        """The next `n` watches get one ERROR event (Status 410 Expired), then end."""
        self.faults.watch_errors.append(WatchErrorRule(remaining=n, code=410, match=match))

    @property
    def seen(self) -> list[RequestInfo]:
        """Every request received, in order, with its arrival time."""
        return self.faults.seen

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests had this method and/or exact path."""
        return sum(
            1
            for info in self.faults.seen
            if (method is None or info.method == method) and (path is None or info.path == path)
        )

    @property
    def counts(self) -> collections.Counter[tuple[str, str]]:
        """Requests seen per (method, path)."""
        return self.faults.counts

    def requests_per_second(self, match: Match | None = None) -> float:
        """Mean rate of the requests `match` accepts, first to last (0.0 if fewer than two)."""
        times = [info.at for info in self.faults.seen if match is None or match(info)]
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    # --- life cycle -----------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, upstream_url: str, *, ca_pem: Path, serving_cert: Path, serving_key: Path
    ) -> AsyncIterator[FaultProxy]:
        """Serve on a free 127.0.0.1 port for the duration of the `async with` block."""
        serve = functools.partial(
            cls.serve,
            upstream_url,
            ca_pem=ca_pem,
            serving_cert=serving_cert,
            serving_key=serving_key,
        )
        error: BaseException | None = None
        async with trio.open_nursery() as nursery:
            proxy: FaultProxy = await nursery.start(serve)
            try:
                yield proxy
            except BaseException as exc:  # re-raised below, outside the nursery's group
                error = exc
            finally:
                nursery.cancel_scope.cancel()
        if error is not None:
            raise error

    @classmethod
    async def serve(
        cls,
        upstream_url: str,
        *,
        ca_pem: Path,
        serving_cert: Path,
        serving_key: Path,
        task_status: trio.TaskStatus[FaultProxy] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until cancelled; `task_status.started` hands over the FaultProxy."""
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(serving_cert, serving_key)
        server_tls.set_alpn_protocols(["http/1.1"])
        upstream_tls = ssl.create_default_context(cafile=str(ca_pem))
        timeout = httpx2.Timeout(30.0, read=None)  # watches stay silent for minutes
        async with httpx2.AsyncClient(
            base_url=upstream_url, verify=upstream_tls, timeout=timeout, trust_env=False
        ) as upstream:
            (tcp,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = tcp.socket.getsockname()[1]
            listener = trio.SSLListener(tcp, server_tls, https_compatible=True)
            proxy = cls(upstream=upstream, url=f"https://127.0.0.1:{port}")
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, proxy._serve_connection, [listener])
                task_status.started(proxy)

    # --- one connection -------------------------------------------------------------------

    async def _serve_connection(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        conn = ClientConnection(stream)
        try:
            while (request := await conn.next_request()) is not None:
                await self._respond(conn, *request)
                if not conn.start_next_cycle():
                    break
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass  # the client went away or spoke nonsense: nothing to answer
        except httpx2.TransportError:
            pass  # the upstream failed mid-body: the client sees its connection cut
        except _CutConnection:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _respond(
        self, conn: ClientConnection, request: h11.Request, info: RequestInfo
    ) -> None:
        self.faults.record(info)
        if self.faults.delay > 0:
            await trio.sleep(self.faults.delay)
        failure = self.faults.take_failure(info)
        watch_error = self.faults.take_watch_error(info)
        if failure is not None:
            await conn.drain_request()
            await conn.send_whole(failure.status, failure.headers(), failure.body)
        elif watch_error is not None:
            await conn.drain_request()
            headers = [(b"content-type", b"application/json")]
            await conn.send_whole(200, headers, faults.watch_error_line(watch_error.code))
        else:
            await self._forward(conn, request, info)

    async def _forward(
        self, conn: ClientConnection, request: h11.Request, info: RequestInfo
    ) -> None:
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        async with contextlib.aclosing(conn.request_body()) as body:
            upstream_request = self._upstream.build_request(
                info.method,
                request.target.decode("ascii"),
                headers=headers,
                content=body if conn.request_has_body(request) else None,
            )
            try:
                response = await self._upstream.send(upstream_request, stream=True)
            except httpx2.TransportError as exc:
                await conn.drain_request()
                await conn.send_whole(502, [], faults.status_json(502, message=repr(exc)))
                return
        try:
            await self._stream_response(conn, response, watch=info.is_watch)
        finally:
            await response.aclose()
        await conn.drain_request()

    async def _stream_response(
        self, conn: ClientConnection, response: httpx2.Response, *, watch: bool
    ) -> None:
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
        await conn.send(h11.Response(status_code=response.status_code, headers=headers))
        state = _Watch() if watch else None
        if state is not None:
            self._watches.add(state)
        chunks = response.aiter_raw()
        try:
            while (chunk := await _next_chunk(chunks, state)) is not None:
                await conn.send(h11.Data(data=chunk))
        finally:
            if state is not None:
                self._watches.discard(state)
            await _finish(chunks)
        if state is not None and state.dropped and not state.graceful:
            raise _CutConnection
        await conn.send(h11.EndOfMessage())


class _Watch:
    """An open watch: drop_watches() marks it and cancels the read in progress, if any."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.dropped = False
        self.graceful = False

    def drop(self, *, graceful: bool) -> None:
        self.dropped, self.graceful = True, graceful
        self.scope.cancel()


async def _next_chunk(chunks: AsyncGenerator[bytes, None], watch: _Watch | None) -> bytes | None:
    """The next piece of the upstream body; None at its end or once the watch was dropped."""
    if watch is None:
        return await anext(chunks, None)
    with trio.CancelScope() as watch.scope:
        if not watch.dropped:
            return await anext(chunks, None)
    return None


async def _finish(chunks: AsyncGenerator[bytes, None]) -> None:
    """End httpx's body iterator by a cancelled read, so each generator nested in it finishes.

    Abandoning it at a `yield` would leave httpx/httpcore generators suspended, and trio
    warns (ResourceWarning, an error in this suite) when it collects them.
    """
    with trio.CancelScope() as scope, contextlib.suppress(httpx2.HTTPError):
        scope.cancel()
        async for _ in chunks:
            pass
