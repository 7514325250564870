"""The node-wide budget (``--max-node-price``): what the node's instances cost per hour, on
every cloud together, never above the limit.

Spend is the sum of the hourly prices of the node's instances that bill (every listed instance
that is not being deleted, and every instance created since the last list of its cloud), plus
the price of every create in flight. A create reserves its offer's price *before* it is sent,
in one step with the check (trio runs one task at a time, so a burst of 500 concurrent
placements cannot all see the same headroom), and the reservation turns into the instance's
price when the create answers, or is released when it fails. A create whose outcome is unknown
keeps its reservation until its cloud has been asked: an instance that might bill counts.

Counting errs on the side of too much: an instance deleted a moment ago counts until its cloud
stops listing it, and a listed instance counts at least at the price it was rented for. Without
a limit, the same books still give /metrics the spend per cloud.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import trio

from vk_trio.providers.base import CloudError, Instance, InstanceState

BUDGET_RETRY = 10.0  # seconds before a pod over budget asks again (others may have ended)


class BudgetExceeded(CloudError):
    """The pod's cheapest offer would take the node over ``--max-node-price``; it waits."""

    reason = "BudgetExceeded"


class Budget:
    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self._live: dict[tuple[str, str], float] = {}  # (cloud, instance id) → $/h
        self._created: dict[tuple[str, str], float] = {}  # trio time of our create
        self._rented_for: dict[tuple[str, str], float] = {}  # the offer's price
        self._held: dict[int, tuple[str, float]] = {}  # reservation → (cloud, $/h)
        self._tokens = itertools.count()

    # --- questions ---------------------------------------------------------------------------

    def spend_by_cloud(self) -> dict[str, float]:
        """$/h of every cloud's billing instances and creates in flight."""
        spend: dict[str, float] = {}
        for (cloud, _), price in self._live.items():
            spend[cloud] = spend.get(cloud, 0.0) + price
        for cloud, price in self._held.values():
            spend[cloud] = spend.get(cloud, 0.0) + price
        return spend

    def committed(self) -> float:
        return sum(self._live.values()) + sum(price for _, price in self._held.values())

    def left(self) -> float | None:
        """What may still be spent per hour (None: no limit)."""
        return None if self.limit is None else max(0.0, self.limit - self.committed())

    def fits(self, price: float) -> bool:
        return self.limit is None or self.committed() + price <= self.limit + 1e-9

    def exceeded(self, price: float, what: str) -> BudgetExceeded:
        """The error for a pod whose cheapest choice (``what`` at ``price``) does not fit."""
        live = sum(self._live.values())
        starting = sum(p for _, p in self._held.values())
        return BudgetExceeded(
            f"node budget --max-node-price ${self.limit:.3f}/h: instances cost ${live:.3f}/h "
            f"and creates in flight ${starting:.3f}/h, ${self.left() or 0.0:.3f}/h left; this "
            f"pod's cheapest offer ({what}) costs ${price:.3f}/h; it waits until others end",
            retry_after=BUDGET_RETRY,
        )

    # --- reservations ------------------------------------------------------------------------

    def reserve(self, cloud: str, price: float, what: str) -> int:
        """Hold ``price`` for a create on ``cloud``; BudgetExceeded if it does not fit."""
        if not self.fits(price):
            raise self.exceeded(price, what)
        token = next(self._tokens)
        self._held[token] = (cloud, price)
        return token

    def release(self, token: int) -> None:
        self._held.pop(token, None)

    def rented(self, token: int, instance: Instance, cloud: str) -> None:
        """The create answered with ``instance``: its price replaces the reservation."""
        _, price = self._held.pop(token, (cloud, instance.price_per_hour))
        key = (cloud, instance.instance_id)
        self._rented_for[key] = price
        self._live[key] = max(price, instance.price_per_hour)
        self._created[key] = trio.current_time()

    # --- what the clouds say -------------------------------------------------------------------

    def listed(self, cloud: str, instances: Iterable[Instance], *, started_at: float) -> None:
        """A fresh list of ``cloud`` (called at ``started_at``): it says what bills there now.
        Instances created after the list started are kept even if it does not show them."""
        fresh: dict[tuple[str, str], float] = {}
        for inst in instances:
            if inst.state is InstanceState.TERMINATING:
                continue
            key = (cloud, inst.instance_id)
            fresh[key] = max(inst.price_per_hour, self._rented_for.get(key, 0.0))
        for key, price in self._live.items():
            if key[0] == cloud and key not in fresh and self._created.get(key, -1.0) >= started_at:
                fresh[key] = price
        self._live = {k: v for k, v in self._live.items() if k[0] != cloud} | fresh
        for key in [k for k in self._created if k[0] == cloud and self._created[k] < started_at]:
            del self._created[key]
        for key in [k for k in self._rented_for if k[0] == cloud and k not in self._live]:
            del self._rented_for[key]

    def deleted(self, cloud: str, instance_id: str) -> None:
        """A delete was accepted: billing stops (a later list that still shows it counts it)."""
        key = (cloud, instance_id)
        self._live.pop(key, None)
        self._created.pop(key, None)
