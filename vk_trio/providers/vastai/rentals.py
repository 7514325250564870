"""Instances this provider rented that the account does not list yet (Vast.ai's read lag).

Why: right after a create, Vast.ai's instance list can answer ``{"instances": null}`` or leave
the new instance out (the documented read lag). If the node then saw no instance for the pod it
would rent a second one, and pay twice. So a rental is remembered from its create answer: a
create of the same key returns it again, and ``list()`` reports it as PROVISIONING until the
account shows its label or ``grace_seconds`` pass (then the list is the truth again).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from vk_trio.providers.base import Instance, InstanceSpec, InstanceState, Offer
from vk_trio.providers.vastai.status import ANNOTATION_PREFIX


@dataclass(frozen=True, kw_only=True)
class _Rental:
    instance: Instance
    since: float  # trio time of the create


class RecentRentals:
    """The rentals of one node not yet seen in a list, by ``InstanceSpec.key``."""

    def __init__(self, *, node_name: str, grace_seconds: float, clock: Callable[[], float]) -> None:
        self.node_name = node_name
        self.grace_seconds = grace_seconds
        self.clock = clock  # epoch seconds: the created time Vast.ai's answer does not give
        self._by_key: dict[str, _Rental] = {}

    def get(self, key: str) -> Instance | None:
        rental = self._by_key.get(key)
        return rental.instance if rental is not None else None

    def rented(self, spec: InstanceSpec, offer: Offer, instance_id: int) -> Instance:
        """The instance a create answered with ``new_contract``, remembered for ``spec.key``."""
        instance = Instance(
            instance_id=str(instance_id),
            node_name=self.node_name,
            pod_uid=spec.pod_uid,
            attempt=spec.attempt,
            state=InstanceState.PROVISIONING,
            message="contract being provisioned",
            created_at=datetime.fromtimestamp(self.clock(), UTC),
            gpu_type=offer.gpu_type,
            gpu_count=offer.gpu_count,
            price_per_hour=offer.price_per_hour,
            location=offer.location,
            image=spec.image,
            annotations={ANNOTATION_PREFIX + "instance-id": str(instance_id)},
        )
        self._by_key[spec.key] = _Rental(instance=instance, since=trio.current_time())
        return instance

    def unlisted(self, listed_keys: Collection[str]) -> list[Instance]:
        """The rentals a list did not show (by the keys it did), within their grace."""
        now = trio.current_time()
        out: list[Instance] = []
        for key, rental in list(self._by_key.items()):
            if key in listed_keys or now - rental.since > self.grace_seconds:
                del self._by_key[key]
            else:
                out.append(rental.instance)
        return out

    def forget(self, instance_id: str) -> None:
        """The instance is being deleted: it is no rental to report any more."""
        for key, rental in list(self._by_key.items()):
            if rental.instance.instance_id == instance_id:
                del self._by_key[key]
