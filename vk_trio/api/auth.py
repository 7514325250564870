"""Who may call the kubelet API, decided exactly as the kubelet decides it (webhook mode only).

Authentication: a client certificate that OpenSSL verified against the client CA during the
handshake is the user (CN) in its groups (O), like the kubelet's x509 authenticator; else a
bearer token the API server accepts in a TokenReview; else 401. Anonymous requests are refused:
the kubelet's ``--anonymous-auth=false``.

Authorization: a SubjectAccessReview for the user on the Node, with the kubelet's mapping of the
path to a subresource (``/stats*`` → nodes/stats, ``/metrics*`` → nodes/metrics, ``/logs*`` →
nodes/log, everything else nodes/proxy; ``/healthz`` and ``/pods`` first try the fine-grained
nodes/healthz and nodes/pods of KEP-2862, then nodes/proxy) and the verb from the HTTP method.
Denied → 403 with the kubelet's message.

Caches, with the kubelet's TTLs: a reviewed token 2 minutes (a refused one 10 seconds), an
allowed decision 5 minutes, a denied one 30 seconds; keyed by a SHA-256 of the token, never the
token itself; bounded in size (least recently used out). Reviews run through their own rate
limiter, so a flood of requests with made-up tokens cannot take the API budget the pod work needs.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from vk_trio.errors import KubeError
from vk_trio.httpserver import PeerSubject, Request, Response
from vk_trio.kube.client import KubeClient
from vk_trio.kube.reviews import Action, Identity, review_access, review_token
from vk_trio.logs import get_logger
from vk_trio.pacing import TokenBucket

_log = get_logger("vk_trio.api.auth")

TOKEN_TTL = 120.0
TOKEN_DENIED_TTL = 10.0
ALLOWED_TTL = 300.0
DENIED_TTL = 30.0
CACHE_SIZE = 4096
REVIEW_QPS = 20.0
REVIEW_BURST = 40
MAX_TOKEN_LENGTH = 16 * 1024
VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}
VERBS["DELETE"] = "delete"

V = TypeVar("V")


class TtlCache(Generic[V]):
    """A small LRU whose entries expire (trio's clock, so tests use virtual time)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[object, tuple[float, V]] = OrderedDict()

    def lookup(self, key: object) -> tuple[bool, V | None]:
        """(True, value) for a live entry (the value may be None), else (False, None)."""
        found = self._items.get(key)
        if found is None:
            return False, None
        expires, value = found
        if trio.current_time() >= expires:
            del self._items[key]
            return False, None
        self._items.move_to_end(key)
        return True, value

    def get(self, key: object) -> V | None:
        return self.lookup(key)[1]

    def put(self, key: object, value: V, ttl: float) -> None:
        self._items[key] = (trio.current_time() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def subresources(path: str) -> tuple[str, ...]:
    """The nodes subresources that may authorise ``path``, the first one tried first."""
    if path == "/stats" or path.startswith("/stats/"):
        return ("stats",)
    if path == "/metrics" or path.startswith("/metrics/"):
        return ("metrics",)
    if path == "/logs" or path.startswith("/logs/"):
        return ("log",)
    if path == "/healthz" or path.startswith("/healthz/"):
        return ("healthz", "proxy")
    if path in ("/pods", "/pods/"):
        return ("pods", "proxy")
    return ("proxy",)


@dataclass(frozen=True)
class Denied:
    """An answer instead of an identity: 401 or 403, with the kubelet's text."""

    response: Response


class Guard:
    """Authenticates and authorises one request; ``check`` returns the caller or an answer."""

    def __init__(
        self,
        client: KubeClient,
        *,
        node_name: str,
        limiter: TokenBucket | None = None,
        on_decision: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.limiter = limiter or TokenBucket(qps=REVIEW_QPS, burst=REVIEW_BURST)
        self.tokens: TtlCache[Identity | None] = TtlCache()
        self.decisions: TtlCache[tuple[bool, str]] = TtlCache()
        self.on_decision = on_decision or (lambda _outcome: None)
        # One review per key at a time: 100 requests that arrive together for the same caller
        # wait for the first one's answer instead of sending 100 reviews.
        self._in_flight: dict[object, trio.Event] = {}

    async def check(self, request: Request) -> Identity | Denied:
        identity = await self.authenticate(request)
        if identity is None:
            self.on_decision("unauthenticated")
            return Denied(Response.text("Unauthorized", status=401))
        verb = VERBS.get(request.method, request.method.lower())
        reasons = []
        for subresource in subresources(request.path):
            action = Action(
                verb=verb, resource="nodes", subresource=subresource, name=self.node_name
            )
            allowed, reason = await self.authorize(identity, action)
            if allowed:
                self.on_decision("allowed")
                return identity
            reasons.append(reason)
        self.on_decision("forbidden")
        last = subresources(request.path)[-1]
        message = (
            f"Forbidden (user={identity.user}, verb={verb}, resource=nodes, subresource={last})"
        )
        return Denied(Response.text(message, status=403))

    async def authenticate(self, request: Request) -> Identity | None:
        if request.peer is not None:
            identity = identity_from_cert(request.peer)
            if identity is not None:
                return identity
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        key = hashlib.sha256(token.encode()).digest()
        await self._wait_in_flight(("token", key))
        hit, cached = self.tokens.lookup(key)
        if hit:
            return cached
        async with self._flight(("token", key)):
            try:
                identity, why = await review_token(self.client, token, limiter=self.limiter)
            except KubeError as exc:
                _log.warning("TokenReview failed: %s", exc)
                return None  # not cached: the API server may answer the next one
            if identity is None:
                _log.debug("a bearer token was refused: %s", why)
            self.tokens.put(key, identity, TOKEN_TTL if identity else TOKEN_DENIED_TTL)
            return identity

    async def authorize(self, identity: Identity, action: Action) -> tuple[bool, str]:
        key = (identity.user, identity.groups, identity.uid, action)
        await self._wait_in_flight(key)
        cached = self.decisions.get(key)
        if cached is not None:
            return cached
        async with self._flight(key):
            try:
                decision = await review_access(self.client, identity, action, limiter=self.limiter)
            except KubeError as exc:
                _log.warning("SubjectAccessReview failed: %s", exc)
                return False, "the authorizer could not be reached"
            self.decisions.put(key, decision, ALLOWED_TTL if decision[0] else DENIED_TTL)
            return decision

    async def _wait_in_flight(self, key: object) -> None:
        pending = self._in_flight.get(key)
        if pending is not None:
            await pending.wait()

    @asynccontextmanager
    async def _flight(self, key: object) -> AsyncIterator[None]:
        done = self._in_flight[key] = trio.Event()
        try:
            yield
        finally:
            del self._in_flight[key]
            done.set()


def identity_from_cert(subject: PeerSubject) -> Identity | None:
    """CN → the user, every O → a group, as the kubelet's x509 authenticator reads them."""
    if not subject.common_name:
        return None
    return Identity(
        user=subject.common_name, groups=(*subject.organizations, "system:authenticated")
    )
