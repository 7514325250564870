"""The account's bill, so tests can prove that no instance outlives its pod.

Vast.ai bills storage from the moment an instance exists until it is destroyed (also while it is
stopped, exited or stuck) and the GPU while it runs (SKILL.md: "storage from creation; GPU from
running"; "not charged during loading"). A client that stops instead of destroying, or forgets an
instance after a restart, leaks money; the ledger makes that visible: ``accruing()`` names every
instance still costing money, ``cost()`` says how much each has cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vk_trio.sim.vastai.instances import SimInstance

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, kw_only=True)
class Charge:
    instance_id: int
    label: str | None
    storage_usd: float
    gpu_usd: float
    alive: bool  # not destroyed: storage still accrues

    @property
    def total_usd(self) -> float:
        return self.storage_usd + self.gpu_usd


class Ledger:
    """Charges of every instance ever rented (destroyed ones included)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._instances: dict[int, SimInstance] = {}

    def open(self, instance: SimInstance) -> None:
        self._instances[instance.id] = instance

    def charge(self, instance: SimInstance, now: float | None = None) -> Charge:
        now = self._clock() if now is None else now
        until = instance.destroyed_at if instance.destroyed_at is not None else now
        storage_per_hour = instance.offer.storage_dph(instance.disk)
        gpu_per_hour = instance.offer.min_bid if instance.bid else instance.offer.dph_base
        return Charge(
            instance_id=instance.id,
            label=instance.label,
            storage_usd=storage_per_hour * max(0.0, until - instance.created_at) / SECONDS_PER_HOUR,
            gpu_usd=gpu_per_hour * instance.gpu_seconds(until) / SECONDS_PER_HOUR,
            alive=instance.destroyed_at is None,
        )

    def instance(self, instance_id: int) -> SimInstance | None:
        """An instance ever rented, destroyed ones included."""
        return self._instances.get(instance_id)

    def billed_seconds(self, instance_id: int, now: float | None = None) -> float:
        """Seconds the instance has existed (its storage is billed all that time)."""
        instance = self._instances[instance_id]
        now = self._clock() if now is None else now
        end = instance.destroyed_at if instance.destroyed_at is not None else now
        return end - instance.created_at

    def charges(self, now: float | None = None) -> list[Charge]:
        return [self.charge(i, now) for i in self._instances.values()]

    def cost(self, instance_id: int, now: float | None = None) -> float:
        return self.charge(self._instances[instance_id], now).total_usd

    def total(self, now: float | None = None) -> float:
        return sum(c.total_usd for c in self.charges(now))

    def accruing(self, now: float | None = None) -> list[int]:
        """Ids of instances whose bill still grows (every instance not destroyed)."""
        return [c.instance_id for c in self.charges(now) if c.alive]

    def accruing_gpu(self, now: float | None = None) -> list[int]:
        """Ids of instances whose GPU is billed right now."""
        now = self._clock() if now is None else now
        return [
            i.id
            for i in self._active()
            if i.gpu_seconds(now) > i.gpu_seconds(max(i.created_at, now - 1e-3))
        ]

    def _active(self) -> Iterable[SimInstance]:
        return (i for i in self._instances.values() if i.destroyed_at is None)
