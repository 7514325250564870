"""Requests, responses and the router: what a handler of the shared HTTP server sees."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class PeerSubject:
    """Who a verified client certificate names: its CN and each of its O (Kubernetes reads them
    as the user and the groups)."""

    common_name: str
    organizations: tuple[str, ...] = ()


@dataclass(kw_only=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern
    remote: str = ""
    route: str = ""  # the pattern that matched ("" when none did), for per-endpoint metrics
    # The subject of the client certificate OpenSSL verified against the server's client CA;
    # None without TLS, without a certificate, or with one that did not verify (tls_stream.py).
    peer: PeerSubject | None = None

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
    # When set, sent chunked, flushed per item. The server closes it (``aclose``) when the client
    # goes away, so an upstream stream behind it is cancelled at once.
    stream: AsyncIterator[bytes] | None = None

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
    """Routes by method and a path pattern with ``{name}`` segments (``[^/]+``); a ``{name:path}``
    segment matches the rest of the path, slashes included."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), pattern, handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorate

    def match(self, request: Request) -> Handler | None:
        """The handler for ``request`` (its ``params`` and ``route`` filled in), or None; a path
        that exists for another method sets ``route`` and returns None."""
        for method, regex, pattern, handler in self._routes:
            found = regex.match(request.path)
            if found is None:
                continue
            request.route = pattern
            if method == request.method:
                request.params = {k: unquote(v) for k, v in found.groupdict().items()}
                return handler
        return None

    async def __call__(self, request: Request) -> Response:
        handler = self.match(request)
        if handler is not None:
            return await handler(request)
        if request.route:
            return Response.json({"error": "method not allowed"}, status=405)
        return Response.json({"error": f"no route for {request.path}"}, status=404)
