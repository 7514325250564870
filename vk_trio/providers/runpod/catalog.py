"""What RunPod sells right now, read once for many pods, and data center ids checked against it.

A burst of 1,000 pods asking for offers would read the catalog 1,000 times, spending the
account's rate-limit quota on the same answer: one read serves every caller for ``seconds``
(callers that arrive while it is read wait for that read). Stock moves meanwhile; a create that
finds it gone answers 400 and placement moves on to the next offer, but those offers come from
the same old read, so once one was found gone each further offer is checked against a fresh read
(one for all of them) before its create: stock that is gone costs no create request. A data
center id the catalog does not know is a typo in an annotation (InvalidAnnotation), not a lack
of stock.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from vk_trio.providers.base import InvalidAnnotation, NoCapacity
from vk_trio.providers.runpod import models
from vk_trio.providers.runpod.annotations import DATACENTER_IDS
from vk_trio.providers.runpod.client import RunPodClient
from vk_trio.providers.runpod.offers import ANY_DATACENTER, Candidate

CATALOG_SECONDS = 5.0  # one catalog read serves every offers() call this long
DATACENTERS_SECONDS = 3600.0  # the list of data centers changes rarely


class CatalogCache:
    def __init__(self, client: RunPodClient, *, seconds: float = CATALOG_SECONDS) -> None:
        self.client = client
        self.seconds = seconds
        self._gpus: dict[tuple[int, str], tuple[float, list[models.GpuType]]] = {}
        self._locks: dict[tuple[int, str], trio.Lock] = {}
        self._datacenters: tuple[float, set[str]] | None = None  # (expires, ids)
        self._stale = False  # an offer read from the catalog was found gone

    async def gpu_types(self, *, count: int, cloud: str) -> list[models.GpuType]:
        """The catalog with availability for ``count`` GPUs in ``cloud``."""
        key = (count, cloud)
        async with self._locks.setdefault(key, trio.Lock()):
            cached = self._gpus.get(key)
            if cached is not None and cached[0] > trio.current_time():
                return cached[1]
            gpus = await self.client.gpu_types(count=count, cloud=cloud)
            self._gpus[key] = (trio.current_time() + self.seconds, gpus)
            return gpus

    def forget(self) -> None:
        """An offer the catalog showed was gone: the next caller reads it again."""
        self._gpus.clear()
        self._stale = True

    async def still_in_stock(self, candidate: Candidate) -> None:
        """Raise NoCapacity when a fresh read says the candidate's stock is gone (only once a
        create has found the catalog out of date; before that, its read is trusted)."""
        if not self._stale:
            return
        gpus = await self.gpu_types(count=candidate.count, cloud=candidate.cloud)
        for gpu in gpus:
            if gpu.id != candidate.gpu_id:
                continue
            if candidate.datacenter == ANY_DATACENTER and gpu.availability not in (None, "NONE"):
                return
            if any(
                dc.id == candidate.datacenter and dc.availability != "NONE"
                for dc in gpu.data_centers or ()
            ):
                return
        raise NoCapacity(f"offer {candidate.offer_id} is no longer in stock")

    async def check_datacenters(self, wanted: Sequence[str]) -> None:
        """A data center the catalog does not know is the user's typo, not a lack of stock."""
        if not wanted:
            return
        if self._datacenters is None or self._datacenters[0] < trio.current_time():
            known = {dc.id.upper() for dc in await self.client.list_datacenters()}
            self._datacenters = (trio.current_time() + DATACENTERS_SECONDS, known)
        unknown = [dc for dc in wanted if dc not in self._datacenters[1]]
        if unknown:
            raise InvalidAnnotation(
                f"{DATACENTER_IDS}: {', '.join(unknown)} is not a RunPod data center "
                f"(known: {', '.join(sorted(self._datacenters[1]))})"
            )
