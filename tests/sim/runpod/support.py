"""Test support for the simulated RunPod: the OpenAPI document as a judge, and HTTP helpers.

``OpenApi`` checks a request the simulator received, or a response it sent, against RunPod's
published v2 document (its schema copy in tests/sim/specs/) with jsonschema, independently of
the simulator's own validator. Both the simulator tests and the provider tests use it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import httpx2

from tests.sim import published_specs
from tests.sim.openapi_support import schema_errors
from vk_trio.sim.runpod import RecordedRequest, RunPodSim

API_KEY = "test-key"


@cache
def load_document() -> dict[str, Any]:
    return published_specs.load_copy(published_specs.RUNPOD)


class OpenApi:
    """Validates recorded traffic against the full v2 document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._routes: list[tuple[str, re.Pattern[str], dict[str, Any], list[Any]]] = []
        for path, methods in document["paths"].items():
            regex = re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$")
            shared = methods.get("parameters", [])
            for method, op in methods.items():
                if method != "parameters":
                    self._routes.append((method.upper(), regex, op, shared))

    def operation(self, method: str, path: str) -> tuple[dict[str, Any], list[Any]]:
        # literal segments win over templates (/v2/registries/delegations vs /{id})
        matches = [
            (op, shared) for m, rx, op, shared in self._routes if m == method and rx.match(path)
        ]
        assert matches, f"{method} {path} is not an operation of the v2 document"
        return min(matches, key=lambda found: json.dumps(found[0]).count("{"))

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            _, _, kind, name = node["$ref"].split("/")
            node = self.document["components"][kind][name]
        return node

    def check(self, schema: dict[str, Any], instance: Any, what: str) -> None:
        errors = sorted(schema_errors(self.document, schema, instance), key=lambda e: e.path)
        assert not errors, f"{what}: {[e.message for e in errors]}\n{json.dumps(instance)[:2000]}"

    def check_response(self, method: str, path: str, status: int, headers: dict[str, str],
                       body: bytes | None) -> None:  # fmt: skip
        op, _ = self.operation(method, path)
        responses = op["responses"]
        declared = responses.get(str(status)) or responses.get("default")
        assert declared is not None, f"{method} {path}: status {status} is not in the document"
        declared = self._resolve(declared)
        what = f"{method} {path} → {status}"
        content = declared.get("content")
        if content is None:
            assert not body, f"{what}: the document says no body, got {body!r}"
            return
        ctype = headers.get("content-type", "").split(";")[0].strip()
        assert ctype in content, f"{what}: content-type {ctype!r}, document has {list(content)}"
        if body is None:  # streamed
            return
        self.check(content[ctype]["schema"], json.loads(body), what)

    def check_recorded(self, recorded: RecordedRequest) -> None:
        if not recorded.operation:  # unrouted (404/405 problem)
            return
        self.check_response(
            recorded.method,
            recorded.path,
            recorded.status,
            recorded.response_headers,
            recorded.response_body,
        )

    def check_request(self, recorded: RecordedRequest) -> None:
        """A request our client sent: its body and its query/header parameters."""
        op, shared = self.operation(recorded.method, recorded.path)
        what = f"request {recorded.method} {recorded.path}"
        params = [self._resolve(p) for p in [*shared, *op.get("parameters", [])]]
        declared = {p["name"] for p in params if p["in"] == "query"}
        unknown = set(recorded.query) - declared
        assert not unknown, f"{what}: query parameters {unknown} are not in the document"
        for param in params:
            if param["in"] == "query" and param["name"] in recorded.query:
                raw = recorded.query[param["name"]][-1]
                schema = self._resolve(param["schema"])
                value: Any = raw
                if schema.get("type") == "integer":
                    value = int(raw)
                elif schema.get("type") == "array":
                    value = raw.split(",")
                self.check(param["schema"], value, f"{what} ?{param['name']}")
        body_spec = op.get("requestBody")
        if body_spec is None:
            assert recorded.body is None, f"{what}: a body where the document has none"
            return
        schema = body_spec["content"]["application/json"]["schema"]
        self.check(schema, recorded.body, what)


def client_for(
    sim: RunPodSim, *, key: str = API_KEY, agent: str = "vk-trio-tests"
) -> httpx2.AsyncClient:
    headers = {"user-agent": agent}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx2.AsyncClient(base_url=sim.url, headers=headers, timeout=30)


GPU = "NVIDIA GeForce RTX 4090"


def pod_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "test-pod",
        "image": "example/app:1",
        "gpu": {"id": GPU, "count": 1},
        "ports": ["8888/http", "22/tcp"],
    }
    body.update(overrides)
    return body
