"""Test support for the simulated Vast.ai: the OpenAPI document as an independent judge.

``OpenApi`` checks one journalled exchange (the request the simulator received and the answer
it gave) against Vast.ai's published document (its schema copy in tests/sim/specs/) with
jsonschema, independently of the simulator's own checker. It applies the simulator's ``ERRATA``
(the places where the document is measurably wrong) to the full document itself, so a wrong
erratum shows up here as a failure rather than being copied. Both the simulator tests and the
provider tests use it.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.sim import published_specs
from tests.sim.openapi_support import schema_errors
from vk_trio.sim.vastai import Exchange
from vk_trio.sim.vastai.validation import ERRATA, EXTRA_RESPONSES, OPERATIONS, RATE_LIMIT_TEXT

API_KEY = "test-key"


def load_document() -> dict[str, Any]:
    """A fresh copy of the whole document's schema part (callers may patch it)."""
    return published_specs.load_copy(published_specs.VASTAI)


def _full_path(where: tuple[str, ...]) -> list[str]:
    """An erratum's subset key path as a path into the full document."""
    if where[0] == "components":
        return list(where)
    _, op_id, part, *rest = where
    method, path = OPERATIONS[op_id]
    prefix = ["paths", path, method]
    if part == "requestBody":
        return [*prefix, "requestBody", "content", "application/json", "schema", *rest]
    status, *inner = rest
    return [*prefix, "responses", status, "content", "application/json", "schema", *inner]


def patched_document() -> dict[str, Any]:
    document = load_document()
    for erratum in ERRATA:
        node: Any = document
        keys = _full_path(erratum.where)
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = copy.deepcopy(erratum.schema)
    return document


class OpenApi:
    """Validates journalled exchanges against the full (errata-patched) document."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document if document is not None else patched_document()
        self._routes: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for path, methods in self.document["paths"].items():
            regex = re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "/?$")
            for method, op in methods.items():
                if isinstance(op, dict) and "operationId" in op:
                    self._routes.append((method.upper(), regex, op))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        found = [op for m, rx, op in self._routes if m == method and rx.match(path)]
        # a literal segment beats a template (/instances/request_logs/{id} vs /instances/{id})
        found.sort(key=lambda op: -len([p for p in op.get("parameters", []) if p["in"] == "path"]))
        assert found, f"{method} {path} is not an operation of the document"
        return found[-1] if len(found) > 1 else found[0]

    def _validate(self, schema: dict[str, Any], value: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in schema_errors(self.document, schema, value)
        ]

    def request_errors(self, exchange: Exchange) -> list[str]:
        op = self.operation(exchange.method, exchange.path)
        errors: list[str] = []
        template = OPERATIONS[op["operationId"]][1]
        names = re.findall(r"\{(\w+)\}", template)
        values = re.match("^" + re.sub(r"\{\w+\}", "([^/]+)", template) + "/?$", exchange.path)
        assert values is not None
        path_values = dict(zip(names, values.groups(), strict=True))
        for param in op.get("parameters", []):
            raw = (
                path_values.get(param["name"])
                if param["in"] == "path"
                else next(iter(reversed(exchange.query.get(param["name"], []))), None)
            )
            if raw is None:
                if param.get("required"):
                    errors.append(f"parameter {param['name']} is required")
                continue
            value: Any = raw
            if param["schema"].get("type") == "integer":
                try:
                    value = int(raw)
                except ValueError:
                    errors.append(f"parameter {param['name']}={raw!r} is not an integer")
                    continue
            errors += [
                f"parameter {param['name']}: {e}" for e in self._validate(param["schema"], value)
            ]
        body = op.get("requestBody")
        if body is not None and exchange.body:
            schema = body["content"]["application/json"]["schema"]
            errors += [f"body {e}" for e in self._validate(schema, json.loads(exchange.body))]
        elif body is not None and body.get("required"):
            errors.append("a request body is required")
        return errors

    def response_errors(self, exchange: Exchange) -> list[str]:
        if exchange.status >= 500:
            return []
        op = self.operation(exchange.method, exchange.path)
        status = str(exchange.status)
        declared = op["responses"].get(status)
        if exchange.status == 429 and exchange.content_type.startswith("text/plain"):
            text = exchange.response.decode()
            return [] if text.startswith(RATE_LIMIT_TEXT) else [f"429 text {text!r}"]
        if not exchange.content_type.startswith("application/json"):
            return [f"content-type {exchange.content_type}"]
        value = json.loads(exchange.response)
        schemas = []
        if declared is not None:
            schemas.append(
                declared.get("content", {}).get("application/json", {}).get("schema", {})
            )
        if status in EXTRA_RESPONSES:
            schemas.append(EXTRA_RESPONSES[status])
        if not schemas:
            return [f"status {status} is not declared for {op['operationId']}"]
        results = [self._validate(schema, value) for schema in schemas]
        return [] if any(not r for r in results) else results[0]

    def check(self, exchanges: list[Exchange], *, requests: bool = True) -> None:
        """Every exchange of an operation is valid (both ways unless ``requests`` is false)."""
        problems: list[str] = []
        for exchange in exchanges:
            if not exchange.operation or exchange.operation == "resultUrl":
                continue
            where = f"{exchange.method} {exchange.path} -> {exchange.status}"
            if requests:
                problems += [f"{where}: request {e}" for e in self.request_errors(exchange)]
            if not exchange.scripted:  # a test's scripted fault need not be a documented answer
                problems += [f"{where}: response {e}" for e in self.response_errors(exchange)]
        assert not problems, "\n".join(problems)


async def rent(http: Any, offer_id: int, image: str = "app:1", **fields: Any) -> int:
    """``PUT /api/v0/asks/{offer_id}/`` with a small body; the new instance id."""
    body = {"image": image, "disk": 10, "runtype": "args", "cancel_unavail": True, **fields}
    response = await http.put(f"/api/v0/asks/{offer_id}/", json=body)
    assert response.status_code == 200, response.text
    new_contract: int = response.json()["new_contract"]
    return new_contract


async def show(http: Any, instance_id: int) -> dict[str, Any] | None:
    response = await http.get(f"/api/v0/instances/{instance_id}/")
    assert response.status_code == 200, response.text
    found: dict[str, Any] | None = response.json()["instances"]
    return found
