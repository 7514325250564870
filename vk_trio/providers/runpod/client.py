"""A small RunPod REST v2 client on httpx2, with the retry table of RunPod's own documentation.

The v2 spec says what each failure means and what to do about it; this module does exactly that
and turns every answer into our error tree where it enters (``raise ... from exc``):

=====  ======================================  ==============================================
429    rate limited                            wait ``Retry-After``, same request (any verb)
5xx    transient upstream failure              backoff, same request (idempotent verbs only:
                                               a create that "failed" may have created, so the
                                               provider looks it up by name before retrying)
400    rule broken, or no capacity             ``NoCapacity``: try the next candidate
402    insufficient balance                    ``PaymentRequired``: stop
403    no access (to this pool)                ``ProviderAuthFailed`` (create: ``NoCapacity``)
422    our body violates the contract          ``InvalidSpec``: never retry, it is our bug
=====  ======================================  ==============================================

It sends our own User-Agent: Cloudflare answers urllib's default with a 403 "error code: 1010"
(measured), and RunPod deserves to know who calls. It reads the ``RateLimit``/``RateLimit-Policy``
headers every answer carries, so the provider can leave optional reads (log tails) for when the
account's quota has room (``quota_room``), and creates leave the last few percent of a window to
the lists that make their pods Ready (a burst that spent a window's last request on a create
made the status wait for the next window: ready to pod Ready p99 23 s).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
import msgspec
import trio

from vk_trio import __version__, decoding
from vk_trio.errors import InvalidInput
from vk_trio.pacing import Backoff
from vk_trio.providers.base import (
    CloudError,
    InvalidSpec,
    LogsUnavailable,
    NoCapacity,
    PaymentRequired,
    ProviderAuthFailed,
    ProviderUnavailable,
    RateLimited,
)
from vk_trio.providers.runpod import models

DEFAULT_BASE_URL = "https://api.runpod.io"
USER_AGENT = f"vk-trio/{__version__} (virtual kubelet; +https://github.com/vk-trio)"
DEFAULT_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
CREATE_TIMEOUT = httpx2.Timeout(60.0, connect=10.0)
CREATES_LEAVE = 0.03  # of each rate-limit window, for the lists that make created pods Ready
MAX_DETAIL = 500  # characters of an error body shown in messages

T = TypeVar("T")
_WINDOW = re.compile(r'"?([A-Za-z0-9_-]+)"?\s*((?:;\s*[a-z]+=\d+)+)')


@dataclass(frozen=True)
class PodListing:
    """The account's pods: those read in full, and those of which only id and name could be
    read (with why), which the provider must still account for (providers/rows.py)."""

    pods: list[models.Pod] = field(default_factory=list)
    unreadable: list[tuple[models.PodStub, InvalidInput]] = field(default_factory=list)
    skipped: list[InvalidInput] = field(default_factory=list)  # not even an id could be read


class NotFoundError(CloudError):
    """404 from RunPod: the pod (or registry, template) does not exist (any more)."""

    reason = "NotFound"
    retryable = False


class RunPodClient:
    """Typed calls to ``{base_url}/v2/...`` with the retry table above."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        backoff: Backoff | None = None,
        max_attempts: int = 5,
        user_agent: str = USER_AGENT,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self.max_attempts = max_attempts
        # window → [requests left, quota, trio time it resets]: the server's count from the
        # headers, less what we sent since (concurrent requests must not all take the last one)
        self._room: dict[str, list[float]] = {}
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            headers={
                "authorization": f"Bearer {api_key}",
                "user-agent": user_agent,
                "accept": "application/json",
            },
            timeout=DEFAULT_TIMEOUT,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the retry loop ----------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: msgspec.Struct | None = None,
        idempotent: bool,
        http_timeouts: httpx2.Timeout = DEFAULT_TIMEOUT,
        before_send: Callable[[], None] | None = None,
        leave: float = 0.0,
    ) -> httpx2.Response:
        """One logical request: 429s are waited out; 5xx and transport errors are retried only
        when ``idempotent``. Returns any other answer (the caller maps 4xx). ``before_send`` is
        called before every attempt (it may raise to give up: the pod went away meanwhile).
        ``leave``: wait for the next window rather than take the last ``leave`` of a window's
        quota (creates leave some to the lists that make pods Ready)."""
        content = None if body is None else msgspec.json.encode(body)
        headers = {"content-type": "application/json"} if content is not None else None
        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            await self._leave_room(leave)
            if before_send is not None:
                before_send()
            self._spend()
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers=headers,
                    timeout=http_timeouts,
                )
            except httpx2.TransportError as exc:
                if not idempotent or last:
                    raise ProviderUnavailable(f"RunPod {method} {path}: {exc!r}") from exc
                await trio.sleep(self.backoff.delay(attempt))
                continue
            self._note_quota(response)
            if response.status_code == 429:
                retry_after = _retry_after(response)
                if last:
                    raise RateLimited(
                        f"RunPod {method} {path}: rate limited", retry_after=retry_after
                    )
                await trio.sleep(self.backoff.delay(attempt, retry_after=retry_after))
                continue
            if response.status_code >= 500:
                if not idempotent or last:
                    raise ProviderUnavailable(
                        f"RunPod {method} {path}: {response.status_code} {_detail(response)}",
                        retry_after=_retry_after(response),
                    )
                await trio.sleep(self.backoff.delay(attempt, retry_after=_retry_after(response)))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_quota(self, response: httpx2.Response) -> None:
        live, policy = response.headers.get("ratelimit"), response.headers.get("ratelimit-policy")
        if not live or not policy:
            return
        quotas = {name: fields.get("q", 0) for name, fields in _windows(policy).items()}
        now = trio.current_time()
        for name, fields in _windows(live).items():
            quota = quotas.get(name, 0)
            if quota <= 0 or "r" not in fields:
                continue
            reset = now + fields.get("t", 60)
            known = self._room.get(name)
            if known is None or known[2] <= now or reset > known[2] + 1:  # a new window
                self._room[name] = [float(fields["r"]), float(quota), reset]
            else:
                known[0] = min(known[0], float(fields["r"]))

    def _spend(self) -> None:
        now = trio.current_time()
        for known in self._room.values():
            if known[2] > now:
                known[0] -= 1

    async def _leave_room(self, fraction: float) -> None:
        """Sleep until no window we know of is down to ``fraction`` of its quota left."""
        while fraction > 0:
            now = trio.current_time()
            low = [
                reset
                for left, quota, reset in self._room.values()
                if reset > now and left <= fraction * quota
            ]
            if not low:
                return
            await trio.sleep(max(low) - now)

    def quota_room(self) -> float:
        """The smallest fraction of a rate-limit window's quota left (1.0: unknown or fresh)."""
        now = trio.current_time()
        return min(
            (max(0.0, left) / quota for left, quota, reset in self._room.values() if reset > now),
            default=1.0,
        )

    def _decode(self, response: httpx2.Response, kind: type[T], what: str) -> T:
        """The answer as ``kind``; an answer that is not (not JSON, too big, too deep, a field
        of another shape) is ProviderUnavailable: retried, never a crash."""
        if response.status_code >= 400:
            raise error_for(response, what)
        try:
            return decoding.json_typed(response.content, kind, what=f"RunPod {what}")
        except InvalidInput as exc:
            raise ProviderUnavailable(f"unexpected answer: {exc}") from exc

    # --- pods ----------------------------------------------------------------------------------

    async def list_pods(self) -> PodListing:
        """Every pod of the account; one that cannot be read does not spoil the list."""
        response = await self.send("GET", "/v2/pods", idempotent=True)
        raw = self._decode(response, models.RawPodList, "list pods").pods
        listing = PodListing()
        for item in raw:
            try:
                listing.pods.append(decoding.json_typed(item, models.Pod, what="RunPod pod"))
            except InvalidInput as exc:
                try:
                    stub = msgspec.json.decode(item, type=models.PodStub)
                except (msgspec.MsgspecError, RecursionError):
                    listing.skipped.append(exc)  # nothing we could act on, nor prove is ours
                    continue
                listing.unreadable.append((stub, exc))
        return listing

    async def get_pod(self, pod_id: str) -> models.Pod | None:
        response = await self.send("GET", f"/v2/pods/{_segment(pod_id)}", idempotent=True)
        if response.status_code == 404:
            return None
        return self._decode(response, models.Pod, f"get pod {pod_id}")

    async def create_pod(
        self,
        request: models.CreatePodRequest,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> models.Pod:
        """One create attempt (429s waited out); 5xx/timeouts raise ProviderUnavailable.
        ``before_send``: asked before each send (after every wait), may raise to give up."""
        response = await self.send(
            "POST",
            "/v2/pods",
            body=request,
            idempotent=False,
            http_timeouts=CREATE_TIMEOUT,
            before_send=before_send,
            leave=CREATES_LEAVE,
        )
        if response.status_code == 403:
            raise NoCapacity(f"RunPod denied access to this GPU pool: {_detail(response)}")
        return self._decode(response, models.Pod, "create pod")

    async def delete_pod(self, pod_id: str) -> None:
        """Terminate (never merely stop: a stopped pod keeps billing its disk); gone is fine."""
        response = await self.send("DELETE", f"/v2/pods/{_segment(pod_id)}", idempotent=True)
        if response.status_code in (200, 204, 404):
            return
        raise error_for(response, f"delete pod {pod_id}")

    # --- catalog and registries ----------------------------------------------------------------

    async def gpu_types(self, *, count: int, cloud: str) -> list[models.GpuType]:
        params = {"include": "AVAILABILITY", "product": "POD", "count": str(count), "cloud": cloud}
        response = await self.send("GET", "/v2/catalog/gpus", params=params, idempotent=True)
        raw = self._decode(response, models.RawGpuTypeList, "list GPU types").gpus
        gpus: list[models.GpuType] = []
        for item in raw:  # a GPU type that cannot be read (a negative price...) is no offer
            try:
                gpus.append(decoding.json_typed(item, models.GpuType, what="RunPod GPU type"))
            except InvalidInput:
                continue
        return gpus

    async def list_datacenters(self) -> list[models.DataCenter]:
        response = await self.send("GET", "/v2/catalog/datacenters", idempotent=True)
        return self._decode(response, models.DataCenterList, "list data centers").data_centers

    async def list_registries(self) -> list[models.Registry]:
        response = await self.send("GET", "/v2/registries", idempotent=True)
        return self._decode(response, models.RegistryList, "list registries").registries

    async def create_registry(self, request: models.CreateRegistryRequest) -> models.Registry:
        response = await self.send("POST", "/v2/registries", body=request, idempotent=False)
        return self._decode(response, models.Registry, "create registry")

    async def delete_registry(self, registry_id: str) -> bool:
        """Delete a registry credential; False when RunPod refuses because a pod still uses it
        (400), True when it is gone (404 included)."""
        path = f"/v2/registries/{_segment(registry_id)}"
        response = await self.send("DELETE", path, idempotent=True)
        if response.status_code in (200, 204, 404):
            return True
        if response.status_code == 400:
            return False
        raise error_for(response, f"delete registry {registry_id}")

    # --- logs ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def log_events(
        self,
        pod_id: str,
        *,
        source: str = "container",
        tail: int | None = None,
        since: str | None = None,
        last_event_id: str | None = None,
    ) -> AsyncIterator[AsyncIterator[tuple[str, models.LogEvent]]]:
        """The pod's SSE log stream as ``(event id, event)``; it never ends by itself."""
        params: dict[str, Any] = {"source": source}
        if tail is not None:
            params["tail"] = str(max(0, min(tail, 5000)))
        if since is not None:
            params["since"] = since
        headers = {"accept": "text/event-stream"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        path = f"/v2/pods/{_segment(pod_id)}/logs"
        timeout = httpx2.Timeout(30.0, connect=10.0, read=None)
        try:
            async with self._http.stream(
                "GET", path, params=params, headers=headers, timeout=timeout
            ) as response:
                self._note_quota(response)
                if response.status_code == 404:
                    raise LogsUnavailable(f"RunPod has no pod {pod_id}")
                if response.status_code == 429 or response.status_code >= 500:
                    await response.aread()
                    kind = RateLimited if response.status_code == 429 else ProviderUnavailable
                    raise kind(
                        f"RunPod logs of pod {pod_id}: {response.status_code}",
                        retry_after=_retry_after(response),
                    )
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response, f"logs of pod {pod_id}")
                events = _events(response)
                try:
                    yield events
                finally:
                    await _finish(events)
        except httpx2.TransportError as exc:
            raise ProviderUnavailable(f"RunPod logs of pod {pod_id}: {exc!r}") from exc


async def _finish(events: AsyncGenerator[tuple[str, models.LogEvent]]) -> None:
    """End a half-read event stream so that no generator in it is left suspended.

    httpx2's streaming iterators are nested async generators that ``break`` would leave
    suspended (trio then warns when they are collected). Reading on in a cancelled scope raises
    Cancelled inside the innermost one, which finishes every generator on its way out.
    """
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            while True:
                await anext(events)
        except StopAsyncIteration:
            pass
    await events.aclose()


async def _events(response: httpx2.Response) -> AsyncGenerator[tuple[str, models.LogEvent]]:
    async for sse in httpx2.EventSource(response):
        if not sse.data:
            continue
        try:
            event = msgspec.json.decode(sse.data, type=models.LogEvent)
        except (msgspec.MsgspecError, RecursionError):  # a line we cannot read is skipped
            continue
        yield sse.id, event


def error_for(response: httpx2.Response, what: str) -> CloudError:
    """Our error for a RunPod 4xx answer (5xx and 429 never reach here)."""
    status, detail = response.status_code, _detail(response)
    message = f"RunPod {what}: {status} {detail}"
    if status == 400:
        return NoCapacity(message)
    if status in (401, 403):
        return ProviderAuthFailed(message)
    if status == 402:
        return PaymentRequired(message)
    if status == 404:
        return NotFoundError(message)
    if status == 422:
        return InvalidSpec(f"{message} (a vk-trio bug: RunPod refused the request body)")
    return CloudError(message)


def _detail(response: httpx2.Response) -> str:
    try:
        problem = msgspec.json.decode(response.content, type=models.Problem)
    except (msgspec.MsgspecError, RecursionError, httpx2.ResponseNotRead):
        return ""
    detail = str(problem.detail)
    if problem.errors:
        detail = f"{detail} {'; '.join(str(e) for e in problem.errors[:10])}".strip()
    return detail[:MAX_DETAIL]


def _segment(identifier: str) -> str:
    """An id RunPod gave us, as one URL path segment: percent-encoded, so that an id with a
    control character, a ``/`` or ``..`` in it is still one harmless segment (a 404)."""
    return quote(identifier, safe="")


def _windows(header: str) -> dict[str, dict[str, int]]:
    """``"minute";r=0;t=12, "hour";q=3000;w=3600`` as {window: {param: value}}."""
    found: dict[str, dict[str, int]] = {}
    for match in _WINDOW.finditer(header[:2048]):
        params = {}
        for item in match.group(2).split(";"):
            key, _, value = item.strip().partition("=")
            if key and value.isascii() and value.isdigit() and len(value) <= 12:
                params[key] = int(value)
        found[match.group(1)] = params
    return found


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return decoding.number(value.strip(), what="Retry-After", low=0.0, high=86400.0)
    except InvalidInput:
        return None
