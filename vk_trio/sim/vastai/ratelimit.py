"""Vast.ai's rate limits: a minimum interval between calls, per endpoint and per caller.

The documents give each endpoint a "threshold" in seconds (create 4.5, show 2, list 1, destroy
3, start/stop/label 1) and the offer search "10 requests per minute per IP"
(rate-limits-and-errors.mdx, ``x-rate-limit`` of the OpenAPI files). A call that comes too soon
gets a 429 with **no** ``Retry-After`` and one of three bodies seen in the field: plain text
``API requests too frequent``, ``{"detail": "... threshold=4.5"}`` and
``{"success": false, "error": "rate_limit_exceeded", "msg": ...}``. The simulator rotates
through them so a client has to cope with all three. A refused call does not count as a call.

Intervals are plain data so tests can shrink them (``RateLimits.scaled``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from vk_trio.httpserver import Response
from vk_trio.sim.vastai.validation import RATE_LIMIT_TEXT

DEFAULT_INTERVALS: dict[str, float] = {
    "createInstance": 4.5,
    "showInstance": 2.0,
    "showInstances": 1.0,
    "destroyInstance": 3.0,
    "manageInstance": 1.0,
}
DEFAULT_WINDOWS: dict[str, tuple[int, float]] = {"searchOffers": (10, 60.0)}
SHAPES = ("detail", "json", "text")


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """Minimum seconds between calls (``intervals``) and (count, seconds) sliding windows."""

    intervals: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    windows: Mapping[str, tuple[int, float]] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    enabled: bool = True

    def scaled(self, factor: float) -> RateLimits:
        """The same limits with every interval and window ``factor`` times as long."""
        return replace(
            self,
            intervals={op: s * factor for op, s in self.intervals.items()},
            windows={op: (n, s * factor) for op, (n, s) in self.windows.items()},
        )


class Limiter:
    """Remembers calls per (caller, operation) and says when one comes too soon."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._last: dict[tuple[str, str], float] = {}
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._shape = 0
        self.refused: dict[str, int] = {}

    def admit(self, caller: str, operation: str, now: float) -> float | None:
        """``None`` when the call may proceed (and is counted); else the threshold it broke."""
        if not self.limits.enabled:
            return None
        key = (caller, operation)
        interval = self.limits.intervals.get(operation)
        if interval is not None:
            last = self._last.get(key)
            if last is not None and now - last < interval:
                return self._refuse(operation, interval)
        window = self.limits.windows.get(operation)
        if window is not None:
            count, seconds = window
            recent = self._recent.setdefault(key, deque())
            while recent and now - recent[0] >= seconds:
                recent.popleft()
            if len(recent) >= count:
                return self._refuse(operation, seconds / count)
            recent.append(now)
        if interval is not None:
            self._last[key] = now
        return None

    def _refuse(self, operation: str, threshold: float) -> float:
        self.refused[operation] = self.refused.get(operation, 0) + 1
        return threshold

    def answer(self, threshold: float) -> Response:
        """The next of the three observed 429 bodies, with no Retry-After."""
        shape = SHAPES[self._shape % len(SHAPES)]
        self._shape += 1
        text = f"{RATE_LIMIT_TEXT} endpoint threshold={threshold:g}"
        if shape == "detail":
            return Response.json({"detail": text}, status=429)
        if shape == "json":
            body = {"success": False, "error": "rate_limit_exceeded", "msg": text}
            return Response.json(body, status=429)
        return Response.text(f"{RATE_LIMIT_TEXT}: endpoint threshold={threshold:g}", status=429)
