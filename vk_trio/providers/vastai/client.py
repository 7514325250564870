"""A small Vast.ai REST client on httpx2: paced, retrying where that is safe, honest about errors.

Any server speaking the API can stand in for Vast.ai: the base URL is a constructor argument
(``https://console.vast.ai`` by default; the simulator in tests). The key travels only as
``Authorization: Bearer`` (the documented method; query-string keys end up in logs) and never to
a logs ``result_url``, which is a presigned storage URL on another host.

What each answer means, and what we do about it:

======================  ===========================================================
429 (three body shapes,  not an error: the endpoint's next turn moves out (pacing.py) and
no Retry-After)          the same request goes again; the server did not act on it
5xx, broken connection   reads and destroys: retried with backoff. A create: its outcome is
                         unknown (``CreateOutcomeUnknown``), the provider looks for the
                         instance by label instead of renting a second one
401 / ``auth_error``     ``ProviderAuthFailed``
``missing_billing``,     ``PaymentRequired``
credit or balance
create 404/410,          ``NoCapacity``: the offer is gone, try the next one
``no_such_ask``, 403
create 400               ``InvalidSpec``
======================  ===========================================================

Foreign exceptions become ours where they enter (``raise ... from exc``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import trio

from vk_trio import decoding
from vk_trio.errors import InvalidInput
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
from vk_trio.providers.vastai.pacing import Pacer

DEFAULT_BASE_URL = "https://console.vast.ai"
USER_AGENT = "vk-trio (virtual kubelet; vastai provider)"
DEFAULT_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
PAGE_SIZE = 25  # the v1 list's maximum
MAX_PAGES = 400
RESULT_POLLS = 30  # vast-cli polls a result_url 30 times, 0.3 s apart
RESULT_POLL_SECONDS = 0.3
MAX_DETAIL = 500  # characters of an error field shown in messages
_GONE_OFFER = re.compile(
    r"no_such_ask|not available|no longer available|unavailable|already (been )?rented", re.I
)
_NO_MONEY = re.compile(r"credit|balance|billing|payment", re.I)


class NotFound(CloudError):
    """Vast.ai says the instance does not exist (any more)."""

    reason = "NotFound"
    retryable = False


class CreateOutcomeUnknown(ProviderUnavailable):
    """A create that timed out or met a 5xx: the instance may or may not exist."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A decoded answer: status, JSON body (or ``None``), and the fields errors use."""

    status: int
    body: Any
    error: str = ""
    message: str = ""

    @property
    def new_contract(self) -> int | None:
        value = self.body.get("new_contract") if isinstance(self.body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 2**53:
            return None
        return value


class VastClient:
    """Typed calls to ``{base_url}/api/v0|v1/...``. Use ``aclose()`` when done."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        intervals: Mapping[str, float] | None = None,
        max_attempts: int = 8,
        timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
        transport: httpx2.AsyncBaseTransport | None = None,
        trust_env: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.pacer = Pacer(intervals)
        self.max_attempts = max_attempts
        common: dict[str, Any] = {
            "timeout": timeout,
            "transport": transport,
            "trust_env": trust_env,
        }
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            headers={
                "authorization": f"Bearer {api_key}",
                "user-agent": USER_AGENT,
                "accept": "application/json",
            },
            **common,
        )
        self._plain = httpx2.AsyncClient(
            headers={"user-agent": USER_AGENT}, follow_redirects=True, **common
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._plain.aclose()

    # --- the retry loop --------------------------------------------------------------------------

    async def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
        before_send: Callable[[], None] | None = None,
    ) -> Answer:
        """One logical request under ``endpoint``'s pacing; returns any non-429, non-5xx answer.
        ``before_send`` is called in each turn, before sending (it may raise to give up)."""
        content = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if content is not None else None
        what = f"{method} {path}"
        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            failure: Exception | None = None
            response: httpx2.Response | None = None
            async with self.pacer.turn(endpoint):
                if before_send is not None:
                    before_send()
                try:
                    response = await self._http.request(
                        method, path, params=params, content=content, headers=headers
                    )
                except httpx2.TransportError as exc:
                    failure = exc
                if response is not None and response.status_code == 429:
                    self.pacer.refused(endpoint, attempt)
                    continue
            if response is None:
                reached = not isinstance(failure, httpx2.ConnectError)
                if not idempotent and reached:
                    raise CreateOutcomeUnknown(f"Vast.ai {what}: {failure!r}") from failure
                if last:
                    raise ProviderUnavailable(f"Vast.ai {what}: {failure!r}") from failure
                await trio.sleep(self.pacer.delay(endpoint, attempt))
                continue
            if response.status_code >= 500:
                detail = f"Vast.ai {what}: {response.status_code} {response.text[:200]}"
                if not idempotent:
                    raise CreateOutcomeUnknown(detail)
                if last:
                    raise ProviderUnavailable(detail)
                await trio.sleep(self.pacer.delay(endpoint, attempt))
                continue
            return decode(response)
        raise RateLimited(f"Vast.ai {what}: still rate limited after {self.max_attempts} tries")

    # --- operations ------------------------------------------------------------------------------

    async def search_offers(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        answer = await self.call("search", "POST", "/api/v0/bundles/", body=query)
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise error_for("search", answer)
        offers = answer.body.get("offers")
        if not isinstance(offers, list):
            raise ProviderUnavailable("Vast.ai offer search: the answer has no 'offers' list")
        return [o for o in offers if isinstance(o, dict)]

    async def create_instance(
        self,
        offer_id: int,
        body: Mapping[str, Any],
        *,
        before_send: Callable[[], None] | None = None,
    ) -> Answer:
        """The raw answer: the caller must look at ``new_contract`` even when it is an error.
        ``before_send``: asked in each turn before sending (after every wait), may raise."""
        return await self.call(
            "create",
            "PUT",
            f"/api/v0/asks/{offer_id}/",
            body=body,
            idempotent=False,
            before_send=before_send,
        )

    async def show_instance(self, instance_id: int) -> dict[str, Any] | None:
        """The instance, or ``None`` (just created and not yet readable, or destroyed)."""
        answer = await self.call("show", "GET", f"/api/v0/instances/{instance_id}/")
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise error_for("show", answer)
        found = answer.body.get("instances")
        return found if isinstance(found, dict) else None

    async def list_instances(
        self, *, select_filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every instance of the account matching ``select_filters``, all pages."""
        rows: list[dict[str, Any]] = []
        params = {"limit": str(PAGE_SIZE)}
        if select_filters:
            params["select_filters"] = json.dumps(select_filters)
        for _ in range(MAX_PAGES):
            answer = await self.call("list", "GET", "/api/v1/instances/", params=params)
            if answer.status != 200 or not isinstance(answer.body, dict):
                raise error_for("list", answer)
            page = answer.body.get("instances")
            if not isinstance(page, list):
                raise ProviderUnavailable("Vast.ai instance list: the answer has no 'instances'")
            rows += [row for row in page if isinstance(row, dict)]
            token = answer.body.get("next_token")
            if not token or not page:
                return rows
            params = {**params, "after_token": str(token)}
        raise ProviderUnavailable(f"Vast.ai instance list: more than {MAX_PAGES} pages")

    async def destroy_instance(self, instance_id: int) -> bool:
        """Destroy; ``False`` when Vast.ai says it was already gone."""
        answer = await self.call("destroy", "DELETE", f"/api/v0/instances/{instance_id}/")
        if answer.status == 200 and isinstance(answer.body, dict):
            if answer.body.get("success", True):
                return True
            if answer.error in ("no_such_instance", "not_found"):
                return False
        if answer.status == 404 and answer.error in ("no_such_instance", "not_found"):
            return False
        raise error_for("destroy", answer)

    async def request_logs(
        self, instance_id: int, *, tail: int | None = None, grep: str | None = None
    ) -> str:
        """The container's logs: ask for an upload, then fetch the result URL once it is ready."""
        body: dict[str, str] = {}
        if tail is not None:
            body["tail"] = str(max(0, tail))
        if grep:
            body["filter"] = grep
        path = f"/api/v0/instances/request_logs/{instance_id}/"
        answer = await self.call("logs", "PUT", path, body=body)
        if answer.status in (403, 404):
            raise LogsUnavailable(
                f"Vast.ai has no logs for instance {instance_id}: {answer.message}"
            )
        url = answer.body.get("result_url") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not isinstance(url, str) or not url:
            raise error_for("logs", answer)
        for _ in range(RESULT_POLLS):
            try:
                response = await self._plain.get(url)
            except (httpx2.TransportError, httpx2.InvalidURL) as exc:
                raise ProviderUnavailable(f"Vast.ai logs of {instance_id}: {exc!r}") from exc
            if response.status_code == 200:
                return response.text
            await trio.sleep(RESULT_POLL_SECONDS)
        raise LogsUnavailable(f"Vast.ai did not upload the logs of instance {instance_id} in time")


def decode(response: httpx2.Response) -> Answer:
    """Any answer as an ``Answer``: a body that is not JSON (or too big, too deep, with numbers
    out of range) is ``None``, and the callers treat that as the error it is."""
    body: Any = None
    if response.content:
        try:
            body = decoding.json_value(response.content, what="Vast.ai answer")
        except InvalidInput:
            body = None
    error, message = "", ""
    if isinstance(body, dict):
        error = str(body.get("error") or "")[:MAX_DETAIL]
        message = str(body.get("msg") or body.get("message") or body.get("detail") or "")
        message = message[:MAX_DETAIL]
    elif body is None:
        message = response.text[:300]
    return Answer(status=response.status_code, body=body, error=error, message=message)


def error_for(operation: str, answer: Answer) -> CloudError:
    """Our error for a refused call of ``operation`` (search, create, show, list, ...)."""
    status, error, text = answer.status, answer.error, answer.message
    detail = f"Vast.ai {operation}: {status} {error} {text}".strip()
    if status == 401 or error == "auth_error":
        return ProviderAuthFailed(detail)
    if status == 402 or error == "missing_billing" or _NO_MONEY.search(text):
        return PaymentRequired(detail)
    if operation == "create":
        if status in (403, 404, 410) or error == "no_such_ask" or _GONE_OFFER.search(text):
            return NoCapacity(detail)
        if status == 400:
            return InvalidSpec(detail)
    if status == 403:
        return ProviderAuthFailed(detail)
    if status == 404:
        return NotFound(detail)
    return ProviderUnavailable(detail)
