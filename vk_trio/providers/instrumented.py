"""A provider wrapper that counts every call by method and outcome, for /metrics.

It works for any provider (the fake included) because it sits on the Provider protocol, not on
HTTP: ``calls[("create", "ok")]``, ``calls[("list", "RateLimited")]``. What a provider retries
inside one call (a 429 it waited out) is counted by its HTTP client, not here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    LogLine,
    LogOptions,
    Offer,
    Provider,
    Requirements,
)
from vk_trio.providers.placement import why_no_offers

T = TypeVar("T")


class InstrumentedProvider:
    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: Counter[tuple[str, str]] = Counter()

    async def _count(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await call()
        except CloudError as exc:
            self.calls[(method, exc.reason)] += 1
            raise
        self.calls[(method, "ok")] += 1
        return result

    def check(self, spec: InstanceSpec) -> None:
        self.inner.check(spec)

    async def offers(self, need: Requirements) -> list[Offer]:
        return await self._count("offers", lambda: self.inner.offers(need))

    async def explain_no_offers(self, need: Requirements) -> str:
        """The inner provider's account of an empty offer list (placement.why_no_offers)."""
        return await why_no_offers(self.inner, need)

    async def housekeep(self) -> None:
        """The inner provider's optional work between lists (providers/base.py)."""
        housekeep = getattr(self.inner, "housekeep", None)
        if callable(housekeep):
            await housekeep()

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        return await self._count("create", lambda: self.inner.create(spec, offer))

    async def list(self) -> list[Instance]:
        return await self._count("list", self.inner.list)

    async def delete(self, instance_id: str) -> None:
        await self._count("delete", lambda: self.inner.delete(instance_id))

    async def logs(self, instance_id: str, opts: LogOptions) -> AsyncGenerator[LogLine, None]:
        self.calls[("logs", "ok")] += 1
        stream: AsyncIterator[LogLine] = self.inner.logs(instance_id, opts)
        async for line in stream:
            yield line

    async def aclose(self) -> None:
        await self.inner.aclose()
