"""Renting one instance for a spec: the cheapest offer that is still there, exactly once.

Marketplaces list offers that are gone a second later, so placement walks the offers cheapest
first and moves on when the chosen one has vanished (``NoCapacity``). A rate limit, an outage,
an empty wallet or a refusal of the spec will not be cured by the next offer of the same cloud,
so that cloud's other offers are skipped; offers of other clouds (a node that fronts several,
providers/router.py) are still tried, and when none rents, the error says what each cloud said.
A create whose outcome is unknown (``OutcomeUnknown``: it may have rented) ends the walk at once:
only the caller's retry loop may try again, and ``create`` is idempotent by ``spec.key``, so a
retry adopts that machine instead of renting a second one. Any other error (a budget that does
not fit) goes straight back to the caller too.

It awaits nothing but the provider, so any object that speaks the protocol (a fake, a stub in a
Hypothesis test) can drive it.
"""

from __future__ import annotations

from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InvalidSpec,
    NoCapacity,
    Offer,
    OutcomeUnknown,
    PaymentRequired,
    Provider,
    ProviderAuthFailed,
    ProviderUnavailable,
    RateLimited,
    Requirements,
)

# Errors that say a cloud will not rent this spec now: its other offers are skipped.
REFUSALS = (RateLimited, ProviderUnavailable, PaymentRequired, ProviderAuthFailed, InvalidSpec)


async def place(provider: Provider, spec: InstanceSpec) -> Instance:
    """Rent an instance for ``spec`` on the cheapest offer that can still be had.

    Raises:
        InvalidSpec, InvalidAnnotation: from ``provider.check``, before anything is asked.
        NoCapacity: no offer matches, or every matching offer vanished before it was rented.
        CreateAborted: the pod stopped wanting an instance (``spec.still_wanted``) meanwhile.
        OutcomeUnknown: a create may have rented; nothing else was tried.
        CloudError: what the clouds said when none rented: one cloud's refusal unchanged
            (RateLimited, ProviderUnavailable, PaymentRequired, InvalidSpec, ...), or, from
            several, the most hopeful kind naming each; other errors of ``offers``/``create``
            unchanged, for the caller's retry loop.
    """
    provider.check(spec)
    offers = affordable(await provider.offers(spec.need), spec.need)
    if not offers:
        raise NoCapacity(await why_no_offers(provider, spec.need))
    vanished: list[str] = []
    refused: dict[str, CloudError] = {}
    for offer in offers:
        if offer.provider in refused:
            continue
        spec.ensure_wanted()  # the offers took a while: is the pod still there?
        try:
            return await provider.create(spec, offer)
        except NoCapacity as exc:
            vanished.append(f"{offer.offer_id} ({exc.message})")
        except OutcomeUnknown:
            raise
        except REFUSALS as exc:
            refused[offer.provider] = exc
    if not vanished and len(refused) == 1:
        raise next(iter(refused.values()))
    if vanished:
        refused["vanished"] = NoCapacity(
            f"every offer for {describe(spec.need)} vanished before it could be rented: "
            + "; ".join(vanished)
        )
    raise most_hopeful(refused)


def most_hopeful(errors: dict[str, CloudError], *, prefix: str = "") -> CloudError:
    """One error for several clouds' answers: a message naming each cloud and what it said,
    of the most hopeful kind (capacity may come back soon, an outage later, a human must fix a
    payment; a spec no cloud can run is the last word), so the pod's retry paces itself right."""
    if len(errors) == 1 and not prefix:
        return next(iter(errors.values()))
    text = prefix + "; ".join(
        f"{cloud}: {exc.reason}: {exc.message}" if cloud != "vanished" else exc.message
        for cloud, exc in errors.items()
    )
    kinds: tuple[type[CloudError], ...] = (
        NoCapacity,
        RateLimited,
        ProviderUnavailable,
        PaymentRequired,
        ProviderAuthFailed,
        InvalidSpec,
    )
    for kind in kinds:
        found = [exc for exc in errors.values() if isinstance(exc, kind)]
        if found:
            waits = [e.retry_after for e in found if e.retry_after is not None]
            chosen = OutcomeUnknown if any(isinstance(e, OutcomeUnknown) for e in found) else kind
            return chosen(text, retry_after=min(waits) if waits else None)
    return ProviderUnavailable(text or "no cloud of this node may serve this pod")


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
