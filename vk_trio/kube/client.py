"""One HTTP client for the Kubernetes API: rate-limited, retrying, typed, and honest about errors.

Every request goes through ``KubeClient.request``, which
* waits for a token of the QPS/burst bucket (defaults 50/100, the kubelet's own),
* adds the bearer/basic credential of the moment (token files and exec plugins rotate),
* retries 429 after the server's Retry-After (any verb: the server did not act), 5xx and broken
  connections only for idempotent verbs (a POST that timed out may have happened), and one 401
  after asking the credential source to refresh,
* maps a Kubernetes ``Status`` error body onto the error tree of vk_trio/errors.py.

Writes are patches (merge, strategic merge, JSON patch) or creates: models decode only the fields
we use, so PUTting a decoded object back would erase the rest.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol, TypeVar

import httpx2
import msgspec
import trio

from vk_trio import __version__
from vk_trio.errors import InvalidInput, KubeStatusError, KubeTransportError, status_error_class
from vk_trio.kube.models import ObjectList, ObjectMeta, Status
from vk_trio.kube.resources import Resource
from vk_trio.pacing import Backoff, TokenBucket

T = TypeVar("T")

PatchType = Literal["merge", "strategic", "json"]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
DEFAULT_QPS = 50.0
DEFAULT_BURST = 100
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 6
USER_AGENT = f"vk-trio/{__version__}"

_status_decoder = msgspec.json.Decoder(Status)


class TokenSource(Protocol):
    async def authorization(self) -> str | None: ...

    def invalidate(self) -> None: ...


class ClusterAccess(Protocol):
    """What the client needs of resolved credentials (vk_trio.kube.auth.Credentials has it)."""

    @property
    def server(self) -> str: ...

    @property
    def tls_server_name(self) -> str | None: ...

    @property
    def token_source(self) -> TokenSource | None: ...

    def ssl_context(self) -> ssl.SSLContext: ...


class KubeClient:
    """The typed, paced, retrying Kubernetes API client. Use as an async context manager."""

    def __init__(
        self,
        access: ClusterAccess,
        *,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: Backoff | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = access.server.rstrip("/")
        self.limiter = TokenBucket(qps=qps, burst=burst)
        self.max_retries = max_retries
        self.sent: dict[str, int] = {}  # requests sent per method (retries included), for metrics
        self.backoff = backoff or Backoff(initial=0.2, maximum=10.0)
        self._timeout = timeout
        self._transport = transport
        self._tokens: TokenSource | None = None
        self._extensions: dict[str, Any] = {}
        self._http = self._open(access)
        self._users: dict[httpx2.AsyncClient, int] = {}  # requests in flight per connection pool
        self._retired: set[httpx2.AsyncClient] = set()

    def _open(self, access: ClusterAccess) -> httpx2.AsyncClient:
        self._tokens = access.token_source
        self._extensions = {}
        if access.tls_server_name:
            self._extensions["sni_hostname"] = access.tls_server_name
        verify: ssl.SSLContext | bool = access.ssl_context() if self._transport is None else False
        return httpx2.AsyncClient(
            base_url=self.server,
            verify=verify,
            transport=self._transport,
            timeout=httpx2.Timeout(self._timeout),
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
            limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def swap_access(self, access: ClusterAccess) -> None:
        """Use new credentials (a renewed client certificate) from the next request on.

        New requests go through a new connection pool, so none of them reuses a connection
        authenticated with the old certificate; requests and streams (watches) in flight on the
        old pool finish there, and the old pool closes when its last one ends.
        """
        if access.server.rstrip("/") != self.server:
            raise ValueError("swap_access keeps the API server: only the credentials change")
        old, self._http = self._http, self._open(access)
        if self._users.get(old, 0):
            self._retired.add(old)
        else:
            await _close(old)

    @asynccontextmanager
    async def _pool(self) -> AsyncIterator[httpx2.AsyncClient]:
        """The current connection pool, counted as in use until the block ends."""
        http = self._http
        self._users[http] = self._users.get(http, 0) + 1
        try:
            yield http
        finally:
            left = self._users[http] = self._users[http] - 1
            if not left:
                del self._users[http]
                if http in self._retired:
                    self._retired.discard(http)
                    await _close(http)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for http in (self._http, *self._retired):
            await _close(http)
        self._retired.clear()

    # --- the one request path ------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        idempotent: bool | None = None,
        limiter: TokenBucket | None = None,
    ) -> httpx2.Response:
        """Send one API request with pacing, credentials and retries; return a 2xx response."""
        safe = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempt = 0
        refreshed_auth = False
        while True:
            await (limiter or self.limiter).acquire()
            headers = await self._headers(content_type if body is not None else None)
            self.sent[method] = self.sent.get(method, 0) + 1
            try:
                async with self._pool() as http:
                    response = await http.request(
                        method,
                        path,
                        params=_query(params),
                        content=body,
                        headers=headers,
                        extensions=self._extensions,
                    )
            except httpx2.TransportError as exc:
                retryable = safe or isinstance(exc, httpx2.ConnectError)
                if not retryable or attempt >= self.max_retries:
                    raise KubeTransportError(f"{method} {path}: {_describe(exc)}") from exc
                await trio.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            error = _status_error(response, method=method, path=path)
            if error.code == 401 and self._tokens is not None and not refreshed_auth:
                self._tokens.invalidate()
                refreshed_auth = True
                continue
            retryable = error.code == 429 or (error.code >= 500 and safe)
            if not retryable or attempt >= self.max_retries:
                raise error
            await trio.sleep(self.backoff.delay(attempt, retry_after=error.retry_after))
            attempt += 1

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if content_type:
            headers["content-type"] = content_type
        if self._tokens is not None:
            value = await self._tokens.authorization()
            if value:
                headers["authorization"] = value
        return headers

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        read_timeout: float | None = None,
    ) -> AsyncIterator[httpx2.Response]:
        """A GET whose body is read incrementally (watches). Not retried: the caller resumes."""
        await self.limiter.acquire()
        headers = await self._headers(None)
        timeout = httpx2.Timeout(DEFAULT_TIMEOUT, read=read_timeout)
        async with self._pool() as http:
            request = http.build_request(
                "GET",
                path,
                params=_query(params),
                headers=headers,
                timeout=timeout,
                extensions=self._extensions,
            )
            try:
                response = await http.send(request, stream=True)
            except httpx2.TransportError as exc:
                raise KubeTransportError(f"GET {path}: {_describe(exc)}") from exc
            try:
                if not response.is_success:
                    await response.aread()
                    error = _status_error(response, method="GET", path=path)
                    if error.code == 401 and self._tokens is not None:
                        self._tokens.invalidate()
                    raise error
                yield response
            finally:
                with trio.CancelScope(shield=True):
                    await response.aclose()

    # --- typed verbs -----------------------------------------------------------------------

    async def get(self, resource: Resource[T], name: str, *, namespace: str | None = None) -> T:
        response = await self.request("GET", resource.path(namespace=namespace, name=name))
        return _decode(response, resource.model)

    async def list(
        self,
        resource: Resource[T],
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 500,
        unreadable: list[tuple[ObjectMeta, InvalidInput]] | None = None,
    ) -> ObjectList[T]:
        """List every object, following ``continue`` tokens; the answer has the list's RV.

        With ``unreadable``, an object that does not decode as the model is left out of the
        items and its metadata (with why) appended there, instead of failing the whole list.
        """
        params: dict[str, str | int | bool] = {"limit": limit}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        items: list[T] = []
        list_type = ObjectList[resource.model]  # type: ignore[name-defined]
        path = resource.path(namespace=namespace)
        while True:
            response = await self.request("GET", path, params=params)
            try:
                page: ObjectList[T] = msgspec.json.decode(response.content, type=list_type)
            except (msgspec.MsgspecError, RecursionError) as exc:
                if unreadable is None:
                    raise _undecodable(f"GET {path}", exc) from None
                page = _per_item(response.content, resource.model, unreadable, path=path)
            items.extend(page.items)
            if not page.metadata.continue_:
                page.items = items
                return page
            params["continue"] = page.metadata.continue_

    async def create(
        self,
        resource: Resource[T],
        obj: Any,
        *,
        namespace: str | None = None,
        limiter: TokenBucket | None = None,
    ) -> T:
        """POST a new object (a model or a plain dict); apiVersion and kind are filled in."""
        payload = msgspec.to_builtins(obj)
        payload.setdefault("apiVersion", resource.api_version)
        payload.setdefault("kind", resource.kind)
        response = await self.request(
            "POST",
            resource.path(namespace=namespace),
            body=msgspec.json.encode(payload),
            limiter=limiter,
        )
        return _decode(response, resource.model)

    async def patch(
        self,
        resource: Resource[T],
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str = "",
        limiter: TokenBucket | None = None,
    ) -> T:
        """PATCH an object (or its ``status`` subresource). Merge patches are retried safely."""
        body = patch if isinstance(patch, bytes) else msgspec.json.encode(patch)
        response = await self.request(
            "PATCH",
            resource.path(namespace=namespace, name=name, subresource=subresource),
            body=body,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
            idempotent=patch_type != "json",
            limiter=limiter,
        )
        return _decode(response, resource.model)

    async def delete(
        self,
        resource: Resource[Any],
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> None:
        """DELETE with optional grace period and preconditions (uid, resourceVersion)."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        preconditions = {
            k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v
        }
        if preconditions:
            options["preconditions"] = preconditions
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        await self.request(
            "DELETE",
            resource.path(namespace=namespace, name=name),
            body=msgspec.json.encode(options),
        )


async def _close(http: httpx2.AsyncClient) -> None:
    with trio.CancelScope(shield=True):
        await http.aclose()


def _decode(response: httpx2.Response, model: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=model)
    except (msgspec.MsgspecError, RecursionError) as exc:
        request = response.request
        raise _undecodable(f"{request.method} {request.url.path}", exc) from None


def _undecodable(what: str, exc: BaseException) -> InvalidInput:
    return InvalidInput(f"{what}: the API server's answer does not decode: {exc}")


def _per_item(
    content: bytes,
    model: type[T],
    unreadable: list[tuple[ObjectMeta, InvalidInput]],
    *,
    path: str,
) -> ObjectList[T]:
    """A list page decoded one item at a time; undecodable items go to ``unreadable``."""
    try:
        raw = msgspec.json.decode(content, type=ObjectList[msgspec.Raw])
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise _undecodable(f"GET {path}", exc) from None
    items: list[T] = []
    for item in raw.items:
        try:
            items.append(msgspec.json.decode(item, type=model))
        except (msgspec.MsgspecError, RecursionError) as exc:
            try:
                meta = msgspec.json.decode(item, type=_MetadataOnly).metadata
            except (msgspec.MsgspecError, RecursionError):
                meta = ObjectMeta()
            unreadable.append((meta, _undecodable(f"GET {path}: {meta.name or '?'}", exc)))
    page: ObjectList[T] = ObjectList(metadata=raw.metadata, items=items)
    return page


class _MetadataOnly(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


def _query(params: Mapping[str, str | int | bool] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()}


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _retry_after(response: httpx2.Response, status: Status | None) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    if status is not None and status.details is not None:
        return status.details.retry_after_seconds
    return None


def _status_error(response: httpx2.Response, *, method: str, path: str) -> KubeStatusError:
    status: Status | None
    try:
        status = _status_decoder.decode(response.content)
    except msgspec.MsgspecError:
        status = None
    message = status.message if status and status.message else response.reason_phrase
    cls = status_error_class(response.status_code)
    return cls(
        f"{method} {path}: {message}",
        code=response.status_code,
        reason=status.reason if status else "",
        retry_after=_retry_after(response, status),
    )


def selector(labels: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """An equality selector string: ``a=b,c=d``."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    return ",".join(f"{k}={v}" for k, v in pairs)
