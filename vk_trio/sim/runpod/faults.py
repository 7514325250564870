"""Fault injection: the ways the real API fails, on demand.

A client is only as good as its handling of the bad days: a burst of 429s (with ``Retry-After``
and the ``RateLimit``/``RateLimit-Policy`` headers RunPod sends on every answer), 5xx, slow
answers, and the worst one, a create that answers 500 although it did create (and bill) the pod
(transformerlab#2305). Tests arm these with ``Fault`` rules and per-window request budgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(kw_only=True)
class Fault:
    """A rule that changes the answers to matching requests.

    ``operation`` is an OpenAPI operationId (``createPod``, ``listPods``, ``getPodLogs``...) or
    ``"*"``. The request waits ``delay`` seconds, then is answered with ``status`` instead of
    being carried out (None: carried out normally, late). With ``apply_first`` the operation is
    carried out first and then answered late and/or with ``status``: a create that answers 500
    (or times out) although it did create the pod. ``times`` is how many matching requests it
    affects (None: all).
    """

    operation: str = "*"
    status: int | None = 500
    delay: float = 0.0
    times: int | None = 1
    apply_first: bool = False
    retry_after: int | None = None
    detail: str = "upstream request failed"
    hits: int = 0

    def matches(self, operation: str) -> bool:
        return (self.operation in ("*", operation)) and (self.times is None or self.times > 0)

    def consume(self) -> None:
        self.hits += 1
        if self.times is not None:
            self.times -= 1


@dataclass(frozen=True, kw_only=True)
class Window:
    name: str
    quota: int
    seconds: int


@dataclass(kw_only=True)
class RateLimiter:
    """Fixed per-user windows (minute, hour, day), as the v2 headers describe them."""

    windows: tuple[Window, ...] = (
        Window(name="minute", quota=1000, seconds=60),
        Window(name="hour", quota=30000, seconds=3600),
        Window(name="day", quota=500000, seconds=86400),
    )
    origin: float | None = None
    used: dict[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def per(cls, *, minute: int, hour: int | None = None, day: int | None = None) -> RateLimiter:
        return cls(
            windows=(
                Window(name="minute", quota=minute, seconds=60),
                Window(name="hour", quota=hour if hour is not None else minute * 50, seconds=3600),
                Window(name="day", quota=day if day is not None else minute * 800, seconds=86400),
            )
        )

    def _slot(self, window: Window, now: float) -> tuple[int, float]:
        """(index of the current window, seconds until it resets)."""
        if self.origin is None:
            self.origin = now
        elapsed = now - self.origin
        index = int(elapsed // window.seconds)
        return index, (index + 1) * window.seconds - elapsed

    def admit(self, now: float) -> tuple[Window | None, dict[str, str]]:
        """Count one request; returns the exceeded window (or None) and the headers to send."""
        exceeded: Window | None = None
        for window in self.windows:
            index, _ = self._slot(window, now)
            if self.used.get((window.name, index), 0) >= window.quota:
                exceeded = exceeded or window
        if exceeded is None:
            for window in self.windows:
                index, _ = self._slot(window, now)
                self.used[(window.name, index)] = self.used.get((window.name, index), 0) + 1
        return exceeded, self.headers(now, exceeded)

    def headers(self, now: float, exceeded: Window | None = None) -> dict[str, str]:
        live, policy = [], []
        for window in self.windows:
            index, reset = self._slot(window, now)
            left = max(0, window.quota - self.used.get((window.name, index), 0))
            live.append(f'"{window.name}";r={left};t={math.ceil(reset)}')
            policy.append(f'"{window.name}";q={window.quota};w={window.seconds}')
        headers = {"ratelimit": ", ".join(live), "ratelimit-policy": ", ".join(policy)}
        if exceeded is not None:
            _, reset = self._slot(exceeded, now)
            headers["retry-after"] = str(max(1, math.ceil(reset)))
        return headers


@dataclass(kw_only=True)
class Faults:
    """The armed fault rules and the rate limiter (None: rate-limit-exempt, no headers)."""

    rules: list[Fault] = field(default_factory=list)
    limiter: RateLimiter | None = field(default_factory=RateLimiter)

    def add(self, fault: Fault) -> Fault:
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, operation: str) -> Fault | None:
        for rule in self.rules:
            if rule.matches(operation):
                rule.consume()
                return rule
        return None
