"""What the fault proxy should do to the next requests, and what it has seen.

Kept apart from the network code so the rules are plain data: a test arms a fault, the proxy
asks `take_failure` / `take_watch_error` for each request, and the request log answers "how
many requests, when" (QPS and backoff assertions). Failures answer with the same Kubernetes
Status JSON the API server would send, so client code is exercised on realistic bodies.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
}
MESSAGES = {
    409: "Operation cannot be fulfilled: the object has been modified; please apply your "
    "changes to the latest version and try again",
    410: "too old resource version: 1 (2)",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected by the fault proxy",
}


@dataclass(frozen=True, kw_only=True)
class RequestInfo:
    """One request the proxy received; `at` is trio.current_time() on arrival."""

    method: str
    path: str
    query: str
    at: float

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query)

    @property
    def is_watch(self) -> bool:
        return self.params.get("watch", [""])[0] in ("true", "1") or "/watch/" in self.path


Match = Callable[[RequestInfo], bool]


@dataclass(kw_only=True)
class FailRule:
    """Answer the next `remaining` matching requests with `status` instead of forwarding."""

    remaining: int
    status: int
    body: bytes
    retry_after: int | None = None
    match: Match | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


@dataclass(kw_only=True)
class WatchErrorRule:
    remaining: int
    code: int
    match: Match | None = None


def status_json(code: int, *, message: str | None = None, retry_after: int | None = None) -> bytes:
    """A metav1.Status body as the API server writes it for `code`."""
    status: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or MESSAGES.get(code, f"injected {code} by the fault proxy"),
        "reason": REASONS.get(code, ""),
        "code": code,
    }
    if retry_after is not None:
        status["details"] = {"retryAfterSeconds": retry_after}
    return json.dumps(status).encode()


def watch_error_line(code: int = 410) -> bytes:
    """One watch event line carrying a Status, as sent when a resourceVersion expired."""
    event = {"type": "ERROR", "object": json.loads(status_json(code))}
    return json.dumps(event).encode() + b"\n"


@dataclass(kw_only=True)
class Faults:
    """The proxy's mutable state: armed faults, delay and the request log."""

    delay: float = 0.0
    rules: list[FailRule] = field(default_factory=list)
    watch_errors: list[WatchErrorRule] = field(default_factory=list)
    seen: list[RequestInfo] = field(default_factory=list)
    counts: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def record(self, info: RequestInfo) -> None:
        self.seen.append(info)
        self.counts[(info.method, info.path)] += 1

    def take_failure(self, info: RequestInfo) -> FailRule | None:
        """The first armed failure matching `info`, with one use consumed."""
        rule = _take(self.rules, info)
        return rule if isinstance(rule, FailRule) else None

    def take_watch_error(self, info: RequestInfo) -> WatchErrorRule | None:
        if not info.is_watch:
            return None
        rule = _take(self.watch_errors, info)
        return rule if isinstance(rule, WatchErrorRule) else None


def _take(
    rules: list[FailRule] | list[WatchErrorRule], info: RequestInfo
) -> FailRule | WatchErrorRule | None:
    for rule in rules:
        if rule.remaining > 0 and (rule.match is None or rule.match(info)):
            rule.remaining -= 1
            return rule
    return None
