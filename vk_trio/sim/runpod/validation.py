"""Request validation driven by RunPod's own OpenAPI document, not by our reading of it.

The real v2 API is strict: a body key the contract does not know is a 422 naming the field
(``$: additional properties 'supportPublicIp' not allowed``), an unknown enum value a 422 listing
the allowed ones. A simulator that only checks what we remembered to check would agree with our
client's bugs, so this module validates bodies and query parameters against the schemas of the
OpenAPI document itself (``spec_subset.py``, extracted from it by ``extract_subset``).

It implements the part of JSON Schema 2020-12 that the document uses: ``$ref``, ``allOf``,
``anyOf``, ``not``, ``if``/``then``/``else``, ``type``, ``enum``, ``required``, ``properties``,
``additionalProperties``, ``unevaluatedProperties``, ``items``, ``min/maxItems``,
``min/maxLength``, ``pattern``, ``minimum``/``maximum``. Formats are not asserted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vk_trio.sim.openapi import components_used, strip
from vk_trio.sim.runpod.spec_subset import SPEC_SUBSET

# The operations the simulator serves; ``extract_subset`` keeps what they need.
OPERATIONS = frozenset(
    {
        "listPods",
        "createPod",
        "getPod",
        "updatePod",
        "deletePod",
        "getPodLogs",
        "podAction",
        "listRegistries",
        "createRegistry",
        "getRegistry",
        "deleteRegistry",
        "listGpuTypes",
        "getGpuType",
        "listDataCenters",
        "getDataCenter",
    }
)
_NOISE = frozenset({"description", "examples", "example", "x-enum-varnames", "summary"})

Schema = Mapping[str, Any]


def extract_subset(document: Mapping[str, Any]) -> dict[str, Any]:
    """The request side of ``OPERATIONS`` (bodies, parameters) and every component they use."""
    paths: dict[str, Any] = {}
    for path, methods in document["paths"].items():
        shared = list(methods.get("parameters", []))
        for method, op in methods.items():
            if method == "parameters" or op.get("operationId") not in OPERATIONS:
                continue
            keep: dict[str, Any] = {"operationId": op["operationId"]}
            if "requestBody" in op:
                keep["requestBody"] = op["requestBody"]["content"]["application/json"]["schema"]
            params = shared + list(op.get("parameters", []))
            if params:
                keep["parameters"] = params
            paths.setdefault(path, {})[method] = keep
    components = components_used(document, paths)
    stripped: dict[str, Any] = strip({"paths": paths, "components": components}, _NOISE)
    return stripped


class Validator:
    """Validates instances against schemas of one OpenAPI document (refs resolve inside it)."""

    def __init__(self, document: Mapping[str, Any] = SPEC_SUBSET) -> None:
        self.document = document
        self._operations: dict[str, Mapping[str, Any]] = {}
        for methods in document["paths"].values():
            for op in methods.values():
                self._operations[op["operationId"]] = op

    def body_errors(self, operation: str, body: Any) -> list[str]:
        """Violations of the operation's request body schema, RunPod-style (``$.x: ...``)."""
        schema = self._operations[operation].get("requestBody")
        if schema is None:
            return []
        errors, _ = self._check(schema, body, "$")
        return errors

    def query_errors(
        self, operation: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> tuple[dict[str, Any], list[str]]:
        """Typed parameter values and violations; unknown query parameters are ignored."""
        values: dict[str, Any] = {}
        errors: list[str] = []
        for ref in self._operations[operation].get("parameters", []):
            param = self._resolve(ref)
            where, name = param["in"], param["name"]
            if where == "query":
                raw = query.get(name)
                text = raw[-1] if raw else None
            elif where == "header":
                text = headers.get(name.lower())
            else:
                continue
            if text is None:
                continue
            schema = self._resolve(param["schema"])
            value, problem = _coerce(text, schema)
            if problem:
                errors.append(f"{where}.{name}: {problem}")
                continue
            found, _ = self._check(schema, value, f"{where}.{name}")
            errors.extend(found)
            values[name] = value
        return values, errors

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node and len(node) == 1:
            _, _, kind, name = node["$ref"].split("/")
            node = self.document["components"][kind][name]
        return node

    def _check(self, schema: Schema, value: Any, path: str) -> tuple[list[str], set[str]]:
        """Errors and the property names evaluated here (for ``unevaluatedProperties``)."""
        errors: list[str] = []
        seen: set[str] = set()
        if "$ref" in schema:
            _, _, kind, name = schema["$ref"].split("/")
            errs, got = self._check(self.document["components"][kind][name], value, path)
            errors += errs
            seen |= got
        for sub in schema.get("allOf", ()):
            errs, got = self._check(sub, value, path)
            errors += errs
            seen |= got
        if "anyOf" in schema:
            results = [self._check(sub, value, path) for sub in schema["anyOf"]]
            passing = [got for errs, got in results if not errs]
            if passing:
                for got in passing:
                    seen |= got
            else:
                errors += results[0][0] or [f"{path}: does not match any allowed schema"]
        if "not" in schema and not self._check(schema["not"], value, path)[0]:
            errors.append(f"{path}: matches a schema it must not match")
        if "if" in schema:
            if_errors, if_seen = self._check(schema["if"], value, path)
            branch = schema.get("else") if if_errors else schema.get("then")
            if not if_errors:
                seen |= if_seen
            if branch is not None:
                errs, got = self._check(branch, value, path)
                errors += errs
                seen |= got
        type_error = _type_error(schema.get("type"), value, path)
        if type_error:
            return [*errors, type_error], seen
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(f"'{v}'" for v in schema["enum"])
            errors.append(f"{path}: value must be one of {allowed}")
        if isinstance(value, dict):
            errors += self._check_object(schema, value, path, seen)
        elif isinstance(value, list):
            errors += self._check_array(schema, value, path)
        elif isinstance(value, str):
            errors += _check_string(schema, value, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                errors.append(f"{path}: must be >= {schema['minimum']} but found {value}")
            if "maximum" in schema and value > schema["maximum"]:
                errors.append(f"{path}: must be <= {schema['maximum']} but found {value}")
        return errors, seen

    def _check_object(
        self, schema: Schema, value: dict[str, Any], path: str, seen: set[str]
    ) -> list[str]:
        errors: list[str] = []
        missing = [name for name in schema.get("required", ()) if name not in value]
        if missing:
            errors.append(f"{path}: missing properties {', '.join(repr(m) for m in missing)}")
        props: Mapping[str, Schema] = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                errs, _ = self._check(sub, value[name], f"{path}.{name}")
                errors += errs
                seen.add(name)
        extra = schema.get("additionalProperties")
        if extra is not None:
            others = [name for name in value if name not in props]
            if extra is False and others:
                names = ", ".join(f"'{n}'" for n in others)
                errors.append(f"{path}: additional properties {names} not allowed")
            elif isinstance(extra, Mapping):
                for name in others:
                    errors += self._check(extra, value[name], f"{path}.{name}")[0]
            seen.update(others)
        if schema.get("unevaluatedProperties") is False:
            others = [name for name in value if name not in seen]
            if others:
                names = ", ".join(f"'{n}'" for n in others)
                errors.append(f"{path}: additional properties {names} not allowed")
            seen.update(others)
        return errors

    def _check_array(self, schema: Schema, value: list[Any], path: str) -> list[str]:
        errors: list[str] = []
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: must have at least {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                errors += self._check(schema["items"], item, f"{path}[{index}]")[0]
        return errors


def _check_string(schema: Schema, value: str, path: str) -> list[str]:
    errors: list[str] = []
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: length must be >= {schema['minLength']}, but got {len(value)}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: length must be <= {schema['maxLength']}, but got {len(value)}")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        errors.append(f"{path}: '{value}' does not match pattern '{schema['pattern']}'")
    return errors


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(wanted: str | list[str] | None, value: Any, path: str) -> str | None:
    if wanted is None:
        return None
    allowed = [wanted] if isinstance(wanted, str) else list(wanted)
    actual = _json_type(value)
    if actual in allowed or (actual == "integer" and "number" in allowed):
        return None
    return f"{path}: got {actual}, want {' or '.join(allowed)}"


def _coerce(text: str, schema: Schema) -> tuple[Any, str | None]:
    """A query/header string as the schema's type (form style, ``explode: false`` for arrays)."""
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        parts = [part for part in text.split(",") if part != ""]
        out = []
        for part in parts:
            value, problem = _coerce(part, items)
            if problem:
                return None, problem
            out.append(value)
        return out, None
    if kind == "integer":
        try:
            return int(text), None
        except ValueError:
            return None, f"'{text}' is not an integer"
    if kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true", None
        return None, f"'{text}' is not a boolean"
    return text, None
