"""Renting one instance for a spec: the cheapest offer that is still there, exactly once.

Marketplaces list offers that are gone a second later, so placement walks the offers cheapest
first and moves on when the chosen one has vanished (``NoCapacity``). Every other error goes
straight back to the caller: a rate limit, an outage or an empty wallet will not be cured by the
next offer, and a create that failed for an unknown reason may have rented a machine anyway.
Only the caller's retry loop may try again, and ``create`` is idempotent by ``spec.key``, so a
retry adopts that machine instead of renting a second one.

It awaits nothing but the provider, so any object that speaks the protocol (a fake, a stub in a
Hypothesis test) can drive it.
"""

from __future__ import annotations

from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    NoCapacity,
    Offer,
    Provider,
    Requirements,
)


async def place(provider: Provider, spec: InstanceSpec) -> Instance:
    """Rent an instance for ``spec`` on the cheapest offer that can still be had.

    Raises:
        InvalidSpec, InvalidAnnotation: from ``provider.check``, before anything is asked.
        NoCapacity: no offer matches, or every matching offer vanished before it was rented.
        CreateAborted: the pod stopped wanting an instance (``spec.still_wanted``) meanwhile.
        CloudError: any other error of ``offers`` or ``create``, unchanged, for the caller's
            retry loop (RateLimited, ProviderUnavailable, PaymentRequired, InvalidSpec, ...).
    """
    provider.check(spec)
    offers = affordable(await provider.offers(spec.need), spec.need)
    if not offers:
        raise NoCapacity(await why_no_offers(provider, spec.need))
    vanished: list[str] = []
    for offer in offers:
        spec.ensure_wanted()  # the offers took a while: is the pod still there?
        try:
            return await provider.create(spec, offer)
        except NoCapacity as exc:
            vanished.append(f"{offer.offer_id} ({exc.message})")
    raise NoCapacity(
        f"every offer for {describe(spec.need)} vanished before it could be rented: "
        + "; ".join(vanished)
    )


async def why_no_offers(provider: Provider, need: Requirements) -> str:
    """The provider's own account of the constraints that ruled every offer out, when it has
    one (the optional ``explain_no_offers(need)`` of providers/base.py), else ``need`` in words."""
    explain = getattr(provider, "explain_no_offers", None)
    if callable(explain):
        try:
            text = await explain(need)
        except CloudError:
            text = None
        if isinstance(text, str) and text:
            return text
    return f"no offer matches: {describe(need)}"


def affordable(offers: list[Offer], need: Requirements) -> list[Offer]:
    """``offers`` within the price cap, cheapest first (stable for equal prices).

    Providers promise this already; placement checks again because a provider bug must never
    rent above the user's cap, and a sort of a sorted list costs nothing.
    """
    cap = need.max_price_per_hour
    within = [offer for offer in offers if cap is None or offer.price_per_hour <= cap]
    return sorted(within, key=lambda offer: offer.price_per_hour)


def describe(need: Requirements) -> str:
    """``need`` in words, for messages: ``2 GPU(s) with >= 24 GB each, at most $1.50/h``."""
    text = f"{need.gpu_count} GPU(s)"
    if need.gpu_memory_gb is not None:
        text += f" with >= {need.gpu_memory_gb:g} GB each"
    if need.cpu_millis:
        text += f", {need.cpu_millis}m CPU"
    if need.memory_mb:
        text += f", {need.memory_mb} MB memory"
    if need.disk_gb is not None:
        text += f", {need.disk_gb:g} GB disk"
    if need.max_price_per_hour is not None:
        text += f", at most ${need.max_price_per_hour:g}/h"
    return text
