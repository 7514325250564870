"""The rows of a Vast.ai offer search as the ``Offer``s one pod can use, checked again here.

Why check again: the search query (selection.py) already filters, but a server that ignores a
filter (or a stand-in that does not know it), and a search shared by several waiting pods
(offer_book.py, each filter at its loosest), must not get a pod the wrong machine. So every row
is held against the pod's own selection and the node's policy before it becomes an offer. A row
with a field we cannot read (a list or text where a number belongs, ``NaN``) is no offer: one
odd row never spoils a search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vk_trio.errors import InvalidInput
from vk_trio.providers.base import Offer
from vk_trio.providers.vastai import selection

DETAILS = ("machine_id", "reliability2", "inet_down", "cuda_max_good")  # shown when known


def offers_from(
    rows: Iterable[Mapping[str, Any]],
    chosen: selection.Selection,
    policy: selection.Policy,
    *,
    provider: str,
) -> list[Offer]:
    """The usable offers among ``rows``, once each, cheapest first (then by id)."""
    found: dict[int, Offer] = {}
    for row in rows:
        offer = offer_from(row, chosen, policy, provider=provider)
        if offer is not None:
            found.setdefault(int(offer.offer_id), offer)
    return sorted(found.values(), key=lambda o: (o.price_per_hour, int(o.offer_id)))


def offer_from(
    row: Mapping[str, Any],
    chosen: selection.Selection,
    policy: selection.Policy,
    *,
    provider: str,
) -> Offer | None:
    """The offer of one search row, if the pod can use it."""
    try:
        offer = selection.OfferRow.read(row)
    except InvalidInput:
        return None
    country = offer.location.rsplit(",", 1)[-1].strip()
    if (
        offer.num_gpus != chosen.gpu_count
        or (chosen.gpu_names and offer.gpu_name not in chosen.gpu_names)
        or (chosen.gpu_ram_mb is not None and offer.ram_mb < chosen.gpu_ram_mb)
        or (chosen.countries is not None and country not in chosen.countries)
        or offer.reliability < policy.min_reliability
        or offer.direct_ports < policy.min_direct_ports
        or not selection.fits(offer, chosen)
    ):
        return None
    details = {"disk_gb": f"{chosen.disk_gb:g}", "gpu_ram_mb": f"{offer.ram_mb:g}"}
    for key in DETAILS:
        value = getattr(offer, key)
        if value is not None:
            details[key] = f"{value:g}" if isinstance(value, float) else str(value)
    return Offer(
        provider=provider,
        offer_id=str(offer.id),
        gpu_type=offer.gpu_name,
        gpu_count=offer.num_gpus,
        gpu_memory_gb=round(offer.ram_mb / 1024, 2),
        price_per_hour=offer.dph_total,
        location=offer.location,
        cloud_type="datacenter" if _datacenter(offer.hosting_type) else "community",
        details=details,
    )


def _datacenter(hosting_type: object) -> bool:
    return (
        isinstance(hosting_type, int) and not isinstance(hosting_type, bool) and hosting_type >= 1
    )
