"""Requests and responses checked against Vast.ai's own OpenAPI document, with its errata named.

A simulator that only checks what we remembered to check agrees with our client's bugs. So the
simulator validates every request body and query against the operation's schema in the published
document (``spec_subset.py``, extracted from it by ``extract_subset``), and checks every response
it sends against the declared response of that status: a violation is recorded in
``Validator``'s caller (``VastSim.violations``) and fails the tests.

The document is wrong in a few places that clients and the docs measured; each deviation is an
``Erratum`` below with its evidence, applied on top of the extracted subset (``patched``). The
test oracle (jsonschema over the full YAML document) applies the same list, so the list is the
one place where we say "the document is wrong here".

The checker implements the JSON Schema keywords the subset uses: ``$ref``, ``anyOf``, ``type``
(also lists), ``enum``, ``required``, ``properties``, ``additionalProperties``, ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``minimum``/``maximum``. Formats are not
asserted. It runs in the single-file build too, where neither PyYAML nor jsonschema exist.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vk_trio.sim import openapi
from vk_trio.sim.openapi import components_used, strip

# operationId → (method, path as in the document). The simulator serves these and only these.
OPERATIONS: dict[str, tuple[str, str]] = {
    "searchOffers": ("post", "/api/v0/bundles"),
    "createInstance": ("put", "/api/v0/asks/{id}"),
    "showInstance": ("get", "/api/v0/instances/{id}"),
    "manageInstance": ("put", "/api/v0/instances/{id}"),
    "destroyInstance": ("delete", "/api/v0/instances/{id}"),
    "showInstances": ("get", "/api/v1/instances"),
    "showLogs": ("put", "/api/v0/instances/request_logs/{id}"),
}
_NOISE = frozenset({"description", "example", "examples", "summary", "tags", "default"})

RATE_LIMIT_TEXT = "API requests too frequent"

_ERROR = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "error": {"type": "string"},
        "msg": {"type": "string"},
    },
}
_RATE_LIMIT_JSON = {
    "anyOf": [
        {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
        {
            "type": "object",
            "required": ["msg"],
            "properties": {
                "success": {"type": "boolean"},
                "error": {"type": "string"},
                "msg": {"type": "string"},
            },
        },
    ]
}
_PORTS = {
    "type": ["object", "null"],
    "additionalProperties": {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "properties": {"HostIp": {"type": "string"}, "HostPort": {"type": "string"}},
        },
    },
}


@dataclass(frozen=True, kw_only=True)
class Erratum:
    """One place where the document is wrong: ``where`` is a key path into the subset."""

    where: tuple[str, ...]
    schema: Any
    why: str


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        where=("operations", "createInstance", "requestBody", "properties", "env"),
        schema={"type": ["object", "string"], "additionalProperties": {"type": "string"}},
        why="env is a JSON object of NAME: value and '-p H:C': '1'; a docker-flag string is "
        "wrong (vast-docs creating-instances-with-api guide, vast-cli parse_env, SDK v6+)",
    ),
    Erratum(
        where=("operations", "searchOffers", "requestBody", "properties", "type"),
        schema={"type": "string", "enum": ["ondemand", "on-demand", "bid", "interruptible"]},
        why="the CLI and SDK send 'on-demand' and accept 'interruptible' for 'bid' "
        "(vast-cli offers.py); the docs' own example sends 'on-demand'",
    ),
    Erratum(
        where=("operations", "searchOffers", "requestBody", "properties", "order"),
        schema={
            "type": "array",
            "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        },
        why="minItems/maxItems 2 belong to each [field, direction] pair, as the description "
        "says; on the list they would forbid the usual one-pair order [['dph_total', 'asc']]",
    ),
    Erratum(
        where=("components", "schemas", "Instance", "properties", "ports"),
        schema=_PORTS,
        why="ports is a dict {'8000/tcp': [{'HostIp', 'HostPort' (a string)}]} present only "
        "when running; show_instance.yaml says 'array of integers' (the v1 list schema is right)",
    ),
    Erratum(
        where=("components", "schemas", "Instance", "properties", "extra_env"),
        schema={"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        why="extra_env is a list of [key, value] pairs (vast-cli show_instance; the v1 list "
        "schema of the same document)",
    ),
    Erratum(
        where=("operations", "showInstance", "responses", "200", "properties", "instances"),
        schema={"anyOf": [{"$ref": "#/components/schemas/Instance"}, {"type": "null"}]},
        why="{'instances': null} right after create and after destroy (vast-sdk#15, vast-cli#405)",
    ),
)

# Answers every operation may give although the document does not list them for it.
# 401: every operation is under BearerAuth. 400: a body that fails the schema.
# 429: the three observed shapes (rate-limits-and-errors.mdx; the {"detail"} yaml examples).
EXTRA_RESPONSES: dict[str, Any] = {"400": _ERROR, "401": _ERROR, "429": _RATE_LIMIT_JSON}


def extract_subset(document: Mapping[str, Any]) -> dict[str, Any]:
    """The ``OPERATIONS`` of ``document`` (parameters, JSON bodies, JSON responses) and the
    components they use, without prose."""
    operations: dict[str, Any] = {}
    for op_id, (method, path) in OPERATIONS.items():
        op = document["paths"][path][method]
        assert op["operationId"] == op_id, (op_id, op["operationId"])
        keep: dict[str, Any] = {"method": method, "path": path}
        params = list(document["paths"][path].get("parameters", [])) + op.get("parameters", [])
        if params:
            keep["parameters"] = params
        body = op.get("requestBody")
        if body is not None:
            keep["requestBody"] = body["content"]["application/json"]["schema"]
            keep["requestBodyRequired"] = bool(body.get("required", False))
        keep["responses"] = {
            status: answer.get("content", {}).get("application/json", {}).get("schema", {})
            for status, answer in op["responses"].items()
        }
        operations[op_id] = keep
    components = components_used(document, operations)
    stripped: dict[str, Any] = strip({"operations": operations, "components": components}, _NOISE)
    return stripped


def patched(subset: Mapping[str, Any]) -> dict[str, Any]:
    """``subset`` with every ``ERRATA`` entry applied."""
    doc: dict[str, Any] = copy.deepcopy(dict(subset))
    for erratum in ERRATA:
        node = doc
        for key in erratum.where[:-1]:
            node = node[key]
        node[erratum.where[-1]] = copy.deepcopy(erratum.schema)
    return doc


class Validator:
    """Checks requests and responses of ``OPERATIONS`` against the patched subset."""

    def __init__(self, subset: Mapping[str, Any] | None = None) -> None:
        if subset is None:
            from vk_trio.sim.vastai.spec_subset import SPEC_SUBSET

            subset = SPEC_SUBSET
        self.document = patched(subset)
        self.operations: Mapping[str, Any] = self.document["operations"]

    # --- requests ------------------------------------------------------------------------------

    def body_errors(self, operation: str, body: bytes) -> list[str]:
        """Violations of the request body schema (an absent body is fine when not required)."""
        op = self.operations[operation]
        schema = op.get("requestBody")
        if schema is None:
            return []
        if not body:
            return ["$: a JSON body is required"] if op.get("requestBodyRequired") else []
        try:
            value = json.loads(body)
        except ValueError as exc:
            return [f"$: not JSON ({exc})"]
        return self.errors(schema, value, "$")

    def parameter_errors(
        self, operation: str, *, path: Mapping[str, str], query: Mapping[str, list[str]]
    ) -> list[str]:
        """Violations of the path and query parameters (query values are typed by the schema)."""
        errors: list[str] = []
        for param in self.operations[operation].get("parameters", []):
            where, name, schema = param["in"], param["name"], param["schema"]
            if where == "path":
                text: str | None = path.get(name)
            elif where == "query":
                values = query.get(name)
                text = values[-1] if values else None
            else:
                continue
            if text is None:
                if param.get("required"):
                    errors.append(f"{where}.{name}: required")
                continue
            value = _typed(text, schema)
            if value is _BAD:
                errors.append(f"{where}.{name}: {text!r} is not of type {schema.get('type')}")
                continue
            errors += self.errors(schema, value, f"{where}.{name}")
        return errors

    # --- responses -----------------------------------------------------------------------------

    def response_errors(
        self, operation: str, status: int, content_type: str, body: bytes
    ) -> list[str]:
        """Violations of the declared answer of ``status`` (or of ``EXTRA_RESPONSES``)."""
        if status >= 500:
            return []  # gateway errors (tests script them) are outside the document
        declared = self.operations[operation]["responses"]
        key = str(status)
        schema = declared.get(key, EXTRA_RESPONSES.get(key))
        if schema is None:
            return [f"{operation}: status {status} is not declared"]
        if status == 429 and content_type.startswith("text/plain"):
            text = body.decode("utf-8", "replace")
            return [] if text.startswith(RATE_LIMIT_TEXT) else [f"429 text body: {text!r}"]
        if not content_type.startswith("application/json"):
            return [f"{operation} {status}: content-type {content_type!r} is not JSON"]
        try:
            value = json.loads(body)
        except ValueError as exc:
            return [f"{operation} {status}: not JSON ({exc})"]
        if status == 429:
            alternatives = [schema, _RATE_LIMIT_JSON]
            if any(not self.errors(alt, value, "$") for alt in alternatives):
                return []
        return self.errors(schema, value, "$")

    # --- the checker ---------------------------------------------------------------------------

    def errors(self, schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
        if "$ref" in schema:
            _, _, kind, name = schema["$ref"].split("/")
            return self.errors(self.document["components"][kind][name], value, path)
        if "anyOf" in schema:
            results = [self.errors(sub, value, path) for sub in schema["anyOf"]]
            if all(results):
                return results[0]
        problem = _type_problem(schema.get("type"), value)
        if problem:
            return [f"{path}: {problem}"]
        errors: list[str] = []
        if "enum" in schema and value not in schema["enum"]:
            errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
        if isinstance(value, dict):
            errors += self._object_errors(schema, value, path)
        elif isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                errors.append(f"{path}: fewer than {schema['minItems']} items")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                errors.append(f"{path}: more than {schema['maxItems']} items")
            if "items" in schema:
                for i, item in enumerate(value):
                    errors += self.errors(schema["items"], item, f"{path}[{i}]")
        elif isinstance(value, str):
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                errors.append(f"{path}: longer than {schema['maxLength']}")
            if "minLength" in schema and len(value) < schema["minLength"]:
                errors.append(f"{path}: shorter than {schema['minLength']}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                errors.append(f"{path}: below {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                errors.append(f"{path}: above {schema['maximum']}")
        return errors

    def _object_errors(
        self, schema: Mapping[str, Any], value: dict[str, Any], path: str
    ) -> list[str]:
        errors = [
            f"{path}.{name}: required" for name in schema.get("required", ()) if name not in value
        ]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors += self.errors(properties[name], item, f"{path}.{name}")
            elif extra is False:
                errors.append(f"{path}.{name}: not allowed")
            elif isinstance(extra, dict):
                errors += self.errors(extra, item, f"{path}.{name}")
        return errors


_BAD = object()
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _type_problem(expected: str | list[str] | None, value: Any) -> str:
    if expected is None:
        return ""
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return ""
        if isinstance(value, _TYPES[name]):
            return ""
    return f"{type(value).__name__} is not of type {expected}"


def _typed(text: str, schema: Mapping[str, Any]) -> Any:
    """A query or path parameter's text as the schema's type (``_BAD`` when it is not)."""
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return _BAD
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            return _BAD
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), _BAD)
    return text


def render_module(subset: Mapping[str, Any]) -> str:
    """The source of ``spec_subset.py`` for ``subset``."""
    return openapi.render_module(
        "The operations of Vast.ai's OpenAPI document that the simulator serves.\n\n"
        "Generated from shared/specs/vastai.openapi.yaml by\n"
        "``python -m vk_trio.sim.vastai.regenerate shared/specs/vastai.openapi.yaml``\n"
        "(prose dropped); do not edit by hand: the errata live in validation.py.\n"
        "tests/sim/vastai/test_validation.py fails when it no longer matches the document.\n"
        "It is a Python module rather than a data file so that the simulator works from the\n"
        "single-file .pyz.\n",
        subset,
    )
