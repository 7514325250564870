"""What the fake marketplace billed, for tests that must prove money stops when a pod ends.

A real cloud bills from rental until the instance is gone, whatever its container is doing, so
an agent that forgets to delete an exited Job's instance keeps paying. The ledger keeps every
instance ever rented, deleted ones included, so a test can assert "nothing of this node was
billed after t" long after ``list()`` stopped showing the instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One rental. Times are epoch seconds; ``deleted_at`` is when billing stopped (or None)."""

    instance_id: str
    node_name: str
    pod_uid: str
    attempt: int
    offer_id: str
    price_per_hour: float
    created_at: float
    deleted_at: float | None

    @property
    def key(self) -> str:
        return f"{self.pod_uid}.{self.attempt}"

    def seconds(self, *, until: float) -> float:
        """Billed seconds from rental up to ``until`` (or up to deletion, if earlier)."""
        end = until if self.deleted_at is None else min(self.deleted_at, until)
        return max(0.0, end - self.created_at)

    def billed_after(self, t: float) -> bool:
        """Still (or already) billing at some moment after ``t``."""
        return self.deleted_at is None or self.deleted_at > t


def total_seconds(entries: Iterable[LedgerEntry], *, until: float) -> float:
    return sum(entry.seconds(until=until) for entry in entries)


def total_cost(entries: Iterable[LedgerEntry], *, until: float) -> float:
    """USD billed for ``entries`` up to ``until``."""
    return sum(entry.seconds(until=until) * entry.price_per_hour / 3600 for entry in entries)
