"""The HTTP face of the simulator: the seven Vast.ai operations vk-trio uses, and result URLs.

Each request passes the gates the real service has, in its order: credentials (a missing or
wrong key is a 401; the offer search also works without a key but not with a wrong one), the
per-endpoint rate limit, the operation's response time (``VastSim.latency``), then the OpenAPI
document's schema for parameters and body (a 400 ``invalid_args`` that names the field). Then the
operation runs on ``VastSim``. Every exchange is journalled and its answer checked against the
document (``VastSim.violations``).

Paths are accepted with and without the trailing slash clients send. ``result_url`` of the logs
endpoint points back at this server (``/sim/logs/<token>.log``, standing in for the S3 object),
answers 404 until the logs are "uploaded", and takes no credentials, like a presigned URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from vk_trio.httpserver import Request, Response, Router
from vk_trio.sim.vastai import bodies, filters
from vk_trio.sim.vastai.app import Exchange, LogResult, VastSim
from vk_trio.sim.vastai.validation import OPERATIONS

LIST_PAGE_MAX = 25
_AUTH_ERROR = {"success": False, "error": "auth_error", "msg": "Invalid user key"}

Operation = Callable[[Request, str], Awaitable[Response]]


class Api:
    """The request handler ``httpserver.serve`` runs."""

    def __init__(self, sim: VastSim) -> None:
        self.sim = sim
        self.router = Router()
        handlers: dict[str, Operation] = {
            "searchOffers": self.search,
            "createInstance": self.create,
            "showInstance": self.show,
            "manageInstance": self.manage,
            "destroyInstance": self.destroy,
            "showInstances": self.list,
            "showLogs": self.logs,
        }
        for op_id, (method, path) in OPERATIONS.items():
            endpoint = self._gated(op_id, handlers[op_id])
            self.router.add(method, path, endpoint)
            self.router.add(method, path + "/", endpoint)
        self.router.add("GET", "/sim/logs/{token}", self.result)

    async def __call__(self, request: Request) -> Response:
        response = await self.router(request)
        if response.status in (404, 405) and _unrouted(response):
            self._record("", request, response)
        return response

    # --- gates ---------------------------------------------------------------------------------

    def _gated(self, op_id: str, handler: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            received_at = self.sim.now()
            fault = self._fault(op_id, request)
            response = fault or await self._gates(op_id, request, handler)
            if fault is None and response.status < 400:
                fault = self._fault(op_id, request, after=True)
                response = fault or response
            self._record(
                op_id, request, response, scripted=fault is not None, received_at=received_at
            )
            if fault is not None:
                return response  # what the test asked for, whatever the document says
            content_type = response.headers.get("content-type", "")
            for problem in self.sim.validator.response_errors(
                op_id, response.status, content_type, response.body
            ):
                self.sim.violations.append(f"response {request.method} {request.path}: {problem}")
            return response

        return endpoint

    async def _gates(self, op_id: str, request: Request, handler: Operation) -> Response:
        sim = self.sim
        key = _key(request)
        if key is None and op_id != "searchOffers":
            return Response.json(_AUTH_ERROR, status=401)
        if key is not None and key not in sim.api_keys:
            if op_id == "searchOffers":
                return Response.json({"error": "auth_error", "msg": "Invalid user key"}, status=404)
            return Response.json(_AUTH_ERROR, status=401)
        caller = key or request.remote.rsplit(":", 1)[0]
        threshold = sim.limiter.admit(caller, op_id, sim.now())
        if threshold is not None:
            return sim.limiter.answer(threshold)
        await sim.latency.wait(op_id)
        problems = sim.validator.parameter_errors(
            op_id, path=request.params, query=request.query
        ) + sim.validator.body_errors(op_id, request.body)
        if problems:
            error = (
                "invalid_request" if op_id in ("searchOffers", "showInstances") else "invalid_args"
            )
            msg = "; ".join(problems)
            sim.rejected.append(f"{request.method} {request.path}: {msg}")
            return Response.json({"success": False, "error": error, "msg": msg}, status=400)
        return await handler(request, caller)

    def _fault(self, op_id: str, request: Request, *, after: bool = False) -> Response | None:
        """A scripted answer for an authenticated call (``VastSim.fail_next``)."""
        key = _key(request)
        if key is None or key not in self.sim.api_keys:
            return None
        return self.sim.take_fault(op_id, after=after)

    def _record(
        self,
        op_id: str,
        request: Request,
        response: Response,
        *,
        scripted: bool = False,
        received_at: float | None = None,
    ) -> None:
        bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
        query_key = "api_key" in request.query
        auth = {(True, True): "both", (True, False): "bearer", (False, True): "query"}.get(
            (bearer, query_key), ""
        )
        query = {k: v for k, v in request.query.items() if k != "api_key"}
        self.sim.journal.append(
            Exchange(
                operation=op_id,
                method=request.method,
                path=request.path,
                query=query,
                body=request.body,
                auth=auth,
                status=response.status,
                content_type=response.headers.get("content-type", ""),
                response=response.body,
                user_agent=request.headers.get("user-agent", ""),
                scripted=scripted,
                received_at=self.sim.now() if received_at is None else received_at,
                answered_at=self.sim.now(),
            )
        )

    # --- operations ----------------------------------------------------------------------------

    async def search(self, request: Request, caller: str) -> Response:
        try:
            query = filters.parse_search(request.json())
        except filters.QueryError as exc:
            return Response.json({"error": "invalid_request", "msg": str(exc)}, status=400)
        self.sim.ignored_filters.extend(query.ignored)
        return Response.json({"offers": filters.search(self.sim.marketplace.all(), query)})

    async def create(self, request: Request, caller: str) -> Response:
        sim = self.sim
        ask_id = int(request.params["id"])
        body: dict[str, Any] = request.json()
        problem = bodies.create_problem(body)
        if problem:
            return _invalid(problem, ask_id)
        bid = body.get("price") is not None
        cancel_unavail = body.get("cancel_unavail")
        if cancel_unavail is None:  # the documented default
            cancel_unavail = not bid and body.get("target_state", "running") == "running"
        offer = sim.marketplace.get(ask_id)
        if offer is None:
            msg = f"error 404/3603: no_such_ask Instance type by id {ask_id} is not available."
            body404 = {"success": False, "error": "invalid_args", "msg": msg, "ask_id": ask_id}
            return Response.json(body404, status=404)
        fields = bodies.instance_fields(body, bid=bid)
        if sim.take_contract_error():
            instance = sim.rent(offer, owner=caller, stopped=True, **fields)
            msg = "error 400/3471: bid price too low; the instance was created stopped"
            answer = {"success": False, "error": "invalid_price", "msg": msg}
            return Response.json(
                {**answer, "ask_id": ask_id, "new_contract": instance.id}, status=400
            )
        taken = sim.marketplace.take(ask_id)
        if taken is None:
            if cancel_unavail:
                msg = f"error 410/3907: no_such_ask Instance type {ask_id} is no longer available."
                answer = {"success": False, "error": "no_such_ask", "msg": msg, "ask_id": ask_id}
                return Response.json(answer, status=410)
            instance = sim.rent(offer, owner=caller, stopped=True, **fields)
        else:
            instance = sim.rent(taken, owner=caller, **fields)
        key = secrets.token_hex(16)
        return Response.json(
            {"success": True, "new_contract": instance.id, "instance_api_key": key}
        )

    async def show(self, request: Request, caller: str) -> Response:
        sim = self.sim
        instance = sim.instance(int(request.params["id"]))
        if instance is None or instance.owner != caller:
            return Response.json({"instances": None})
        if sim.now() < sim.state.hidden_until.get(instance.id, 0.0):
            return Response.json({"instances": None})
        return Response.json({"instances": instance.as_json(sim.now())})

    async def manage(self, request: Request, caller: str) -> Response:
        sim = self.sim
        instance = sim.instance(int(request.params["id"]))
        if instance is None or instance.owner != caller:
            msg = f"Instance {request.params['id']} not found."
            return Response.json(
                {"success": False, "error": "no_such_instance", "msg": msg}, status=404
            )
        body: dict[str, Any] = request.json() or {}
        if "label" in body:
            instance.label = body["label"]
        state = body.get("state")
        now = sim.now()
        if state == "stopped" and instance.intended == "running":
            instance.stop(now)
            sim.marketplace.give_back(instance.offer.id)
        elif (
            state == "running"
            and instance.intended == "stopped"
            and sim.marketplace.take(instance.offer.id) is not None
        ):
            instance.restart(now)
        # a start without a free GPU stays "Scheduling" (manage-instances.mdx), maybe forever
        return Response.json({"success": True})

    async def destroy(self, request: Request, caller: str) -> Response:
        sim = self.sim
        instance = sim.instance(int(request.params["id"]))
        if instance is None or instance.owner != caller:
            msg = f"Instance {request.params['id']} not found."
            return Response.json(
                {"success": False, "error": "no_such_instance", "msg": msg}, status=404
            )
        sim.destroy(instance)
        return Response.json({"success": True})

    async def list(self, request: Request, caller: str) -> Response:
        sim = self.sim
        try:
            limit = int(request.arg("limit") or LIST_PAGE_MAX)
            order_by = json.loads(request.arg("order_by") or '[{"col": "id", "dir": "asc"}]')
            select_cols = json.loads(request.arg("select_cols") or '["*"]')
            raw_filters = json.loads(request.arg("select_filters") or "{}")
            flts = filters.parse_filters(raw_filters)
            filters.check_instance_filters(flts)
            for item in order_by:
                if item["col"] not in filters.STORED_INSTANCE_COLUMNS:
                    raise filters.QueryError(f"{item['col']} is not a valid order column")
        except (ValueError, TypeError, KeyError) as exc:
            return Response.json({"error": "invalid_request", "msg": str(exc)}, status=400)
        limit = 5 if limit <= 0 else min(limit, LIST_PAGE_MAX)
        now = sim.now()
        rows = [i.as_json(now) for i in sim.instances(owner=caller)]
        rows = [row for row in rows if filters.instance_matches(row, flts)]
        rows.sort(key=lambda row: row["id"])
        for item in reversed(order_by):
            desc = str(item.get("dir", "asc")).lower() == "desc"
            column: str = item["col"]
            rows.sort(key=lambda row: filters.sort_key(row.get(column)), reverse=desc)
        start = 0
        token = request.arg("after_token")
        if token:
            position = _decode_token(token)
            if position is None:
                return Response.json({"error": "invalid_token", "msg": "Invalid token"}, status=400)
            after_id, offset = position
            ids = [row["id"] for row in rows]
            start = ids.index(after_id) + 1 if after_id in ids else min(offset, len(rows))
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["label"] or ""] = counts.get(row["label"] or "", 0) + 1
        if select_cols != ["*"]:
            page = [{col: row.get(col) for col in select_cols} for row in page]
        next_token = _encode_token(rows[start + limit - 1]["id"], start + limit) if more else None
        return Response.json(
            {
                "success": True,
                "instances_found": len(page),
                "total_instances": len(rows),
                "label_counts": counts,
                "next_token": next_token,
                "instances": page,
            }
        )

    async def logs(self, request: Request, caller: str) -> Response:
        sim = self.sim
        instance = sim.instance(int(request.params["id"]))
        if instance is None or instance.owner != caller:
            return Response.json({"error": "invalid_id", "msg": "Invalid instance id."}, status=404)
        body: dict[str, Any] = request.json() or {}
        now = sim.now()
        if body.get("daemon_logs") == "true":
            lines = [f"daemon: contract {instance.id} on machine {instance.offer.machine_id}"]
        else:
            lines = instance.log_lines(now)
        pattern = body.get("filter")
        if pattern:
            lines = [line for line in lines if _grep(pattern, line)]
        tail = body.get("tail")
        if tail and tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        token = secrets.token_hex(12)
        text = "".join(f"{line}\n" for line in lines)
        sim.state.log_results[token] = LogResult(ready_at=now + sim.logs_delay_seconds, text=text)
        host = request.headers.get("host") or sim.url.removeprefix("http://")
        url = f"http://{host}/sim/logs/{token}.log"
        return Response.json({"success": True, "result_url": url, "msg": "logs requested"})

    async def result(self, request: Request) -> Response:
        sim = self.sim
        found = sim.state.log_results.get(request.params["token"].removesuffix(".log"))
        if found is None or sim.now() < found.ready_at:
            response = Response.text("NoSuchKey", status=404)
        else:
            response = Response.text(found.text)
        self._record("resultUrl", request, response)
        return response


# --- helpers ----------------------------------------------------------------------------------


def _key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.arg("api_key")


def _unrouted(response: Response) -> bool:
    """The router's own answer: no route for the path, or not for this method."""
    return b"no route for" in response.body or b"method not allowed" in response.body


def _invalid(msg: str, ask_id: int) -> Response:
    body = {"success": False, "error": "invalid_args", "msg": f"error 400/3467: {msg}"}
    return Response.json({**body, "ask_id": ask_id}, status=400)


def _grep(pattern: str, line: str) -> bool:
    try:
        return re.search(pattern, line) is not None
    except re.error:
        return pattern in line


def _encode_token(after_id: int, offset: int) -> str:
    raw = json.dumps({"values": {"id": after_id}, "offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[int, int] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["values"]["id"]), int(data["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
