"""Scripted trouble: errors for the next calls of a method, latency per call, and call counts.

Real clouds answer in seconds, rate-limit, time out, run out of machines and answer 500 after
renting. Tests of the reconciler and of placement need each of those at an exact moment (and a
latency, fixed or a uniform range, per method: vk_trio/latency.py), and need to assert how often
the cloud was asked ("one list() per interval"); this is the knob board. It is per provider
object (not shared through the state file): a test steers the fake it holds.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Literal, get_args

import trio

from vk_trio.latency import Latency, Spread
from vk_trio.providers.base import CloudError

Method = Literal["offers", "create", "list", "delete", "logs"]
METHODS: tuple[Method, ...] = get_args(Method)


class Faults:
    """The scripted errors, latencies and call counts of one provider object."""

    def __init__(
        self, latency: Mapping[Method, float | tuple[float, float] | Spread] | None = None
    ) -> None:
        self._latency = Latency({str(method): value for method, value in (latency or {}).items()})
        self._queues: dict[Method, deque[tuple[CloudError, bool]]] = {m: deque() for m in METHODS}
        self._calls: Counter[Method] = Counter()

    async def enter(self, method: Method) -> CloudError | None:
        """Count the call, take its latency (trio time), raise its scripted error.

        Returns the error to raise once the call has done its work (``after_effect``), if any.
        """
        self._calls[method] += 1
        if delay := self._latency.draw(method):
            await trio.sleep(delay)
        if self._queues[method]:
            error, after_effect = self._queues[method].popleft()
            if not after_effect:
                raise error
            return error
        return None

    def fail_next(self, method: Method, *errors: CloudError, after_effect: bool = False) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        if after_effect and method not in ("create", "delete"):
            raise ValueError("after_effect applies to create and delete only")
        self._queues[method].extend((error, after_effect) for error in errors)

    def set_latency(self, method: Method, seconds: float | tuple[float, float]) -> None:
        """Each call of ``method`` takes ``seconds`` (or uniformly ``(low, high)``)."""
        self._latency.set(method, seconds)

    def call_count(self, method: Method) -> int:
        return self._calls[method]

    def reset_call_counts(self) -> None:
        self._calls.clear()
