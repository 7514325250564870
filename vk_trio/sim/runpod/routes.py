"""The v2 HTTP surface of the simulated RunPod: auth, limits, faults, validation, handlers.

Every request goes through the same gate, in the order the real API appears to apply it: route
(404/405 as problem bodies), bearer auth (401), the Cloudflare user-agent check (403), per-window
rate limits (429 with ``Retry-After``), the operation's response time (``sim.latency``), armed
faults, then validation of query parameters and body against the OpenAPI document (422 naming
the field), then the handler's own rules. Every answer is an OpenAPI-valid body: the tests check
each one against the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from vk_trio.httpserver import Request, Response
from vk_trio.sim.runpod.catalog import SECURE
from vk_trio.sim.runpod.faults import TITLES
from vk_trio.sim.runpod.model import LogEntry, SimPod
from vk_trio.sim.runpod.state import ApiError

if TYPE_CHECKING:
    from vk_trio.sim.runpod.app import RunPodSim

Handler = Callable[[Request, dict[str, Any], Any], Awaitable[Response]]
BLOCKED_AGENTS = ("python-urllib",)  # Cloudflare answers these with "error code: 1010"
FOLLOW_POLL = 1.0


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """One request as the simulator received it (tests validate our client's requests)."""

    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int
    response_headers: dict[str, str]
    response_body: bytes | None  # None for a streamed answer (the SSE log stream)
    received_at: float = 0.0  # the simulator's clock (benchmarks: requests in flight)
    answered_at: float = 0.0


def problem(status: int, detail: str, *, errors: list[str] | None = None) -> Response:
    body: dict[str, Any] = {
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(
        status=status,
        headers={"content-type": "application/problem+json"},
        body=json.dumps(body).encode(),
    )


class Api:
    """The route table and the request gate, bound to one simulator."""

    def __init__(self, sim: RunPodSim) -> None:
        self.sim = sim
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        for method, pattern, operation, handler in (
            ("GET", "/v2/pods", "listPods", self.list_pods),
            ("POST", "/v2/pods", "createPod", self.create_pod),
            ("GET", "/v2/pods/{id}", "getPod", self.get_pod),
            ("PATCH", "/v2/pods/{id}", "updatePod", self.update_pod),
            ("DELETE", "/v2/pods/{id}", "deletePod", self.delete_pod),
            ("POST", "/v2/pods/{id}/action", "podAction", self.pod_action),
            ("GET", "/v2/pods/{id}/logs", "getPodLogs", self.pod_logs),
            ("GET", "/v2/registries", "listRegistries", self.list_registries),
            ("POST", "/v2/registries", "createRegistry", self.create_registry),
            ("GET", "/v2/registries/{id}", "getRegistry", self.get_registry),
            ("DELETE", "/v2/registries/{id}", "deleteRegistry", self.delete_registry),
            ("GET", "/v2/catalog/gpus", "listGpuTypes", self.list_gpus),
            ("GET", "/v2/catalog/gpus/{id}", "getGpuType", self.get_gpu),
            ("GET", "/v2/catalog/datacenters", "listDataCenters", self.list_datacenters),
            ("GET", "/v2/catalog/datacenters/{id}", "getDataCenter", self.get_datacenter),
        ):
            regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
            self.routes.append((method, regex, operation, handler))

    async def __call__(self, request: Request) -> Response:
        received_at = self.sim.clock.now()
        operation, response = await self._gate(request)
        self.sim.requests.append(
            RecordedRequest(
                operation=operation,
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=_parse(request.body),
                status=response.status,
                response_headers=dict(response.headers),
                response_body=None if response.stream is not None else response.body,
                received_at=received_at,
                answered_at=self.sim.clock.now(),
            )
        )
        return response

    async def _gate(self, request: Request) -> tuple[str, Response]:
        allowed = []
        for method, regex, operation, handler in self.routes:
            match = regex.match(request.path)
            if match is None:
                continue
            allowed.append(method)
            if method == request.method:
                request.params = match.groupdict()
                return operation, await self._guarded(request, operation, handler)
        if allowed:
            response = problem(405, "The requested method is not allowed for this path.")
            response.headers["allow"] = ", ".join(allowed)
            return "", response
        return "", problem(404, "resource not found")

    async def _guarded(self, request: Request, operation: str, handler: Handler) -> Response:
        sim = self.sim
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return problem(401, "missing bearer token")
        if auth[7:].strip() not in sim.api_keys:
            return problem(401, "invalid bearer token")
        agent = request.headers.get("user-agent", "").lower()
        if not agent or agent.startswith(BLOCKED_AGENTS):
            return problem(403, "error code: 1010 (the browser signature was banned)")
        now = sim.clock.now()
        limits: dict[str, str] = {}
        if sim.faults.limiter is not None:
            exceeded, limits = sim.faults.limiter.admit(now)
            if exceeded is not None:
                response = problem(429, f"rate limit exceeded for the {exceeded.name} window")
                response.headers.update(limits)
                return response
        await sim.latency.wait(operation)
        fault = sim.faults.pick(operation)
        if fault is None:
            response = await self._validated(request, operation, handler)
        elif fault.apply_first:  # carried out, then answered late and/or wrongly
            response = await self._validated(request, operation, handler)
            await trio.sleep(fault.delay)
            if fault.status is not None:
                response = _fault_response(fault.status, fault.detail, fault.retry_after)
        else:  # answered late, then carried out or refused
            await trio.sleep(fault.delay)
            if fault.status is not None:
                response = _fault_response(fault.status, fault.detail, fault.retry_after)
            else:
                response = await self._validated(request, operation, handler)
        response.headers.update({k: v for k, v in limits.items() if k != "retry-after"})
        return response

    async def _validated(self, request: Request, operation: str, handler: Handler) -> Response:
        validator = self.sim.validator
        params, errors = validator.query_errors(operation, request.query, request.headers)
        body: Any = None
        if request.method in ("POST", "PATCH", "PUT"):
            body = _parse(request.body)
            if body is _INVALID:
                return problem(400, "request body is not valid JSON")
            errors += validator.body_errors(operation, body)
        if errors:
            return problem(422, "Request validation failed.", errors=errors)
        try:
            return await handler(request, params, body)
        except ApiError as exc:
            return problem(exc.status, exc.detail, errors=exc.errors)

    # --- pods ------------------------------------------------------------------------------

    def _pod(self, request: Request) -> SimPod:
        return self.sim.account.get(request.params["id"], self.sim.clock.now())

    def _pod_json(self, pod: SimPod) -> dict[str, Any]:
        return pod.to_json(self.sim.clock.now(), self.sim.clock)

    async def list_pods(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        pods = self.sim.account.live(self.sim.clock.now())
        return Response.json({"pods": [self._pod_json(pod) for pod in pods]})

    async def create_pod(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        pod = self.sim.account.create(body, self.sim.clock.now())
        return Response.json(self._pod_json(pod), status=201)

    async def get_pod(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        return Response.json(self._pod_json(self._pod(request)))

    async def update_pod(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        pod = self.sim.account.update(self._pod(request), body, self.sim.clock.now())
        return Response.json(self._pod_json(pod))

    async def delete_pod(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        self.sim.account.terminate(self._pod(request), self.sim.clock.now())
        return Response(status=204)

    async def pod_action(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        pod = self._pod(request)
        self.sim.account.act(pod, body["action"], self.sim.clock.now())
        if body["action"] == "terminate":
            return Response(status=204)
        return Response.json(self._pod_json(pod))

    async def pod_logs(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        pod = self._pod(request)
        source = params.get("source")
        entries = [e for e in pod.logs if source is None or e.source == source]
        last_id = params.get("Last-Event-ID")
        if last_id is not None:
            entries = self._after(entries, last_id)
        elif params.get("since") is not None:
            since = _parse_time(params["since"])
            if since is None:
                return problem(
                    422, "Request validation failed.", errors=["query.since: not RFC 3339"]
                )
            start = self.sim.clock.to_seconds(since)
            entries = [e for e in entries if e.t >= start]
        else:
            tail = params.get("tail", 100)
            entries = entries[len(entries) - tail :] if tail else []
        headers = {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
        }
        return Response(headers=headers, stream=self._stream(pod, source, entries))

    def _after(self, entries: list[LogEntry], last_id: str) -> list[LogEntry]:
        stamp, _, seq = last_id.partition("/")
        if seq.isdigit():
            return [e for e in entries if e.seq > int(seq)]
        when = _parse_time(stamp)
        if when is None:
            return entries
        start = self.sim.clock.to_seconds(when)
        return [e for e in entries if e.t > start]

    def _stream(self, pod: SimPod, source: str | None, backfill: list[LogEntry]) -> LogStream:
        return LogStream(self, pod, source, backfill)

    def _event(self, entry: LogEntry) -> bytes:
        stamp = self.sim.clock.stamp(entry.t)
        data = json.dumps({"ts": stamp, "source": entry.source, "line": entry.line})
        return f"id: {stamp}/{entry.seq:012d}\ndata: {data}\n\n".encode()

    # --- registries --------------------------------------------------------------------------

    async def list_registries(
        self, request: Request, params: dict[str, Any], body: Any
    ) -> Response:
        items = [{"id": r.id, "name": r.name} for r in self.sim.account.registries.values()]
        return Response.json({"registries": items})

    async def create_registry(
        self, request: Request, params: dict[str, Any], body: Any
    ) -> Response:
        registry = self.sim.account.create_registry(body)
        return Response.json({"id": registry.id, "name": registry.name}, status=201)

    async def get_registry(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        registry = self.sim.account.registries.get(request.params["id"])
        if registry is None:
            raise ApiError(404, "registry not found")
        return Response.json({"id": registry.id, "name": registry.name})

    async def delete_registry(
        self, request: Request, params: dict[str, Any], body: Any
    ) -> Response:
        self.sim.account.delete_registry(request.params["id"])
        return Response(status=204)

    # --- catalog -----------------------------------------------------------------------------

    def _gpu_options(self, params: dict[str, Any]) -> dict[str, Any]:
        include = "AVAILABILITY" in (params.get("include") or [])
        if include and not params.get("product"):
            raise ApiError(400, "product is required with include=AVAILABILITY")
        if not include:
            given = [k for k in ("product", "count", "cloud", "countryCodes", "cudaVersions",
                                 "minCudaVersion") if k in params]  # fmt: skip
            if given:
                raise ApiError(400, f"{given[0]} is valid only with include=AVAILABILITY")
        if "cudaVersions" in params and "minCudaVersion" in params:
            raise ApiError(400, "cudaVersions and minCudaVersion are mutually exclusive")
        return {
            "availability": include,
            "cloud": params.get("cloud", SECURE),
            "count": params.get("count", 1),
            "countries": params.get("countryCodes"),
        }

    async def list_gpus(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        options = self._gpu_options(params)
        catalog = self.sim.catalog
        gpus = [catalog.gpu_json(gpu, **options) for gpu in catalog.gpus.values()]
        if options["countries"]:
            gpus = [gpu for gpu in gpus if gpu.get("dataCenters")]
        return Response.json({"gpus": gpus})

    async def get_gpu(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        options = self._gpu_options(params)
        gpu = self.sim.catalog.gpus.get(request.params["id"])
        if gpu is None:
            raise ApiError(404, "GPU type not found")
        return Response.json(self.sim.catalog.gpu_json(gpu, **options))

    async def list_datacenters(
        self, request: Request, params: dict[str, Any], body: Any
    ) -> Response:
        include = "GPU_AVAILABILITY" in (params.get("include") or [])
        regions = params.get("regions")
        catalog = self.sim.catalog
        dcs = [
            catalog.datacenter_json(dc, gpu_availability=include)
            for dc in catalog.datacenters.values()
            if not regions or dc.region in regions
        ]
        return Response.json({"dataCenters": dcs})

    async def get_datacenter(self, request: Request, params: dict[str, Any], body: Any) -> Response:
        dc = self.sim.catalog.datacenters.get(request.params["id"])
        if dc is None:
            raise ApiError(404, "data center not found")
        include = "GPU_AVAILABILITY" in (params.get("include") or [])
        return Response.json(self.sim.catalog.datacenter_json(dc, gpu_availability=include))


class LogStream:
    """The SSE body of ``getPodLogs``: backfill, then new lines as the pod prints them.

    Like RunPod's, it never ends while the pod exists. A class rather than an async generator,
    so that a client hanging up leaves nothing to finalize.
    """

    def __init__(self, api: Api, pod: SimPod, source: str | None, backfill: list[LogEntry]) -> None:
        self.api, self.pod, self.source = api, pod, source
        self.pending: list[LogEntry] | None = backfill
        self.last = pod.logs[-1].seq if pod.logs else 0
        self.open = True
        api.sim.open_log_streams += 1

    async def aclose(self) -> None:
        """The server closes the body when it is done or the client went away."""
        if self.open:
            self.open = False
            self.api.sim.open_log_streams -= 1

    def __aiter__(self) -> LogStream:
        return self

    async def __anext__(self) -> bytes:
        if self.pending is not None:
            first, self.pending = self.pending, None
            return b"".join(self.api._event(e) for e in first) or b": stream open\n\n"
        clock, pod = self.api.sim.clock, self.pod
        while pod.id in self.api.sim.account.pods:  # the stream ends only when the pod is gone
            due = pod.next_event()
            wait = FOLLOW_POLL if due is None else min(FOLLOW_POLL, max(due - clock.now(), 0.0))
            await trio.sleep(wait)
            pod.advance(clock.now())
            fresh = [
                e
                for e in pod.logs
                if e.seq > self.last and (self.source is None or e.source == self.source)
            ]
            self.last = pod.logs[-1].seq if pod.logs else self.last
            if fresh:
                return b"".join(self.api._event(e) for e in fresh)
        raise StopAsyncIteration


_INVALID = object()


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _INVALID


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _fault_response(status: int, detail: str, retry_after: int | None) -> Response:
    response = problem(status, detail)
    if retry_after is not None:
        response.headers["retry-after"] = str(retry_after)
    return response
