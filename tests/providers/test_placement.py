"""Placement: cheapest offer first, next offer only when one vanished, never a second rental.

Placement spends the user's money, so its properties are checked with Hypothesis as well as by
example: whatever the offers, it never rents above the cap, it rents the cheapest offer that is
still there, and it never calls create again after an error that the next offer cannot cure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.providers.helpers import CHEAP, MID, fake, spec
from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InstanceState,
    InvalidAnnotation,
    InvalidSpec,
    LogLine,
    LogOptions,
    LogsUnavailable,
    NoCapacity,
    Offer,
    OutcomeUnknown,
    PaymentRequired,
    Provider,
    ProviderUnavailable,
    RateLimited,
    Requirements,
)
from vk_trio.providers.fake import BOOT_SECONDS, CatalogEntry, FakeProvider, trio_clock
from vk_trio.providers.placement import describe, place


def offer(offer_id: str, price: float, cloud: str = "stub") -> Offer:
    return Offer(
        provider=cloud,
        offer_id=offer_id,
        gpu_type="GPU",
        gpu_count=1,
        gpu_memory_gb=24,
        price_per_hour=price,
    )


@dataclass
class StubMarket:
    """A provider that offers exactly what it is told and fails create as it is told."""

    offered: list[Offer]
    errors: dict[str, CloudError] = field(default_factory=dict)  # offer id → create raises it
    tried: list[str] = field(default_factory=list)
    name: str = "stub"

    def check(self, spec: InstanceSpec) -> None:
        pass

    async def offers(self, need: Requirements) -> list[Offer]:
        return list(self.offered)

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.tried.append(offer.offer_id)
        if offer.offer_id in self.errors:
            raise self.errors[offer.offer_id]
        return Instance(
            instance_id=f"i-{offer.offer_id}",
            node_name=spec.node_name,
            pod_uid=spec.pod_uid,
            state=InstanceState.PROVISIONING,
            price_per_hour=offer.price_per_hour,
            annotations={"offer": offer.offer_id},
        )

    async def list(self) -> list[Instance]:
        return []

    async def delete(self, instance_id: str) -> None:
        pass

    def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]:
        raise LogsUnavailable("stub")

    async def aclose(self) -> None:
        pass


def test_stub_market_satisfies_the_provider_protocol() -> None:
    market: Provider = StubMarket([])
    assert isinstance(market, Provider)


# --- by example -----------------------------------------------------------------------------------


async def test_place_rents_the_cheapest_offer() -> None:
    provider = fake()
    instance = await place(provider, spec())
    assert instance.gpu_type == CHEAP.gpu_type
    assert provider.call_count("create") == 1


async def test_place_moves_to_the_next_offer_when_one_vanished() -> None:
    provider = fake()
    provider.fail_next("create", NoCapacity("taken a moment ago"))
    instance = await place(provider, spec())
    assert instance.gpu_type == MID.gpu_type
    assert provider.call_count("create") == 2
    assert len(provider.ledger()) == 1


async def test_place_tries_offers_cheapest_first_until_one_is_still_there() -> None:
    gone = NoCapacity("gone")
    market = StubMarket(
        [offer("c", 0.3), offer("a", 0.1), offer("b", 0.2), offer("d", 0.4)],
        errors={"a": gone, "b": gone},
    )
    instance = await place(market, spec())
    assert instance.annotations["offer"] == "c"
    assert market.tried == ["a", "b", "c"]


async def test_place_says_what_was_asked_when_no_offer_matches() -> None:
    with pytest.raises(NoCapacity) as raised:
        await place(fake(), spec(gpu_memory_gb=100, max_price_per_hour=0.1))
    assert raised.value.message == "no offer matches: 1 GPU(s) with >= 100 GB each, at most $0.1/h"


async def test_place_raises_no_capacity_when_every_offer_vanished() -> None:
    market = StubMarket(
        [offer("a", 0.1), offer("b", 0.2)],
        errors={"a": NoCapacity("rented by someone"), "b": NoCapacity("machine offline")},
    )
    with pytest.raises(NoCapacity, match="vanished") as raised:
        await place(market, spec())
    assert "a (rented by someone)" in raised.value.message
    assert "b (machine offline)" in raised.value.message


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("slow down", retry_after=30),
        ProviderUnavailable("502 Bad Gateway"),
        PaymentRequired("insufficient credits"),
        InvalidSpec("image refused"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_place_reraises_errors_the_next_offer_cannot_cure(error: CloudError) -> None:
    market = StubMarket([offer("a", 0.1), offer("b", 0.2)], errors={"a": error})
    with pytest.raises(type(error)) as raised:
        await place(market, spec())
    assert raised.value is error
    assert market.tried == ["a"]


async def test_a_cloud_that_refuses_has_its_other_offers_skipped_and_another_cloud_rents() -> None:
    offered = [offer("a1", 0.1, "a"), offer("a2", 0.15, "a"), offer("b1", 0.2, "b")]
    market = StubMarket(offered, errors={"a1": ProviderUnavailable("503")})
    rented = await place(market, spec())
    assert rented.instance_id == "i-b1" and market.tried == ["a1", "b1"]


@pytest.mark.parametrize(
    ("errors", "kind", "said"),
    [
        (
            {"a1": PaymentRequired("no credit"), "b1": RateLimited("slow", retry_after=7)},
            RateLimited,
            ["a: PaymentRequired: no credit", "b: RateLimited: slow"],
        ),
        (
            {"a1": NoCapacity("sold"), "b1": PaymentRequired("no credit")},
            NoCapacity,
            ["vanished", "a1 (sold)", "b: PaymentRequired: no credit"],
        ),
        (
            {"a1": InvalidSpec("no templates"), "b1": InvalidSpec("no ports")},
            InvalidSpec,
            ["a: Unsupported: no templates", "b: Unsupported: no ports"],
        ),
    ],
    ids=["retry-soonest", "capacity-first", "spec-last"],
)
async def test_when_no_cloud_rents_the_error_names_each_and_is_the_most_hopeful_kind(
    errors: dict[str, CloudError], kind: type[CloudError], said: list[str]
) -> None:
    market = StubMarket([offer("a1", 0.1, "a"), offer("b1", 0.2, "b")], errors=errors)
    with pytest.raises(kind) as raised:
        await place(market, spec())
    assert type(raised.value) is kind
    for text in said:
        assert text in raised.value.message
    if kind is RateLimited:
        assert raised.value.retry_after == 7


async def test_a_create_of_unknown_outcome_ends_the_walk_at_once() -> None:
    offered = [offer("a1", 0.1, "a"), offer("b1", 0.2, "b")]
    market = StubMarket(offered, errors={"a1": OutcomeUnknown("timed out; cannot ask")})
    with pytest.raises(OutcomeUnknown):
        await place(market, spec())
    assert market.tried == ["a1"]  # b1 could rent a second instance for the same pod


async def test_place_checks_the_spec_before_asking_for_offers() -> None:
    provider = fake()
    with pytest.raises(InvalidAnnotation, match=BOOT_SECONDS):
        await place(provider, spec(annotations={BOOT_SECONDS: "soon"}))
    assert provider.call_count("offers") == 0


async def test_place_never_rents_twice_when_create_fails_after_renting() -> None:
    provider = fake()
    provider.fail_next("create", ProviderUnavailable("timeout"), after_effect=True)
    with pytest.raises(ProviderUnavailable):
        await place(provider, spec())
    assert provider.call_count("create") == 1
    retried = await place(provider, spec())  # the caller's retry loop, later
    assert [entry.instance_id for entry in provider.ledger()] == [retried.instance_id]


async def test_place_never_rents_above_the_cap_even_if_the_provider_offers_it() -> None:
    market = StubMarket([offer("pricey", 5.0), offer("fine", 0.9), offer("over", 1.01)])
    instance = await place(market, spec(max_price_per_hour=1.0))
    assert instance.annotations["offer"] == "fine"
    assert market.tried == ["fine"]


def test_describe_names_every_part_of_the_need() -> None:
    need = Requirements(
        gpu_count=2,
        gpu_memory_gb=24,
        cpu_millis=4000,
        memory_mb=16384,
        disk_gb=50,
        max_price_per_hour=1.5,
    )
    assert describe(need) == (
        "2 GPU(s) with >= 24 GB each, 4000m CPU, 16384 MB memory, 50 GB disk, at most $1.5/h"
    )
    assert describe(Requirements()) == "1 GPU(s)"


# --- properties -----------------------------------------------------------------------------------

prices = st.integers(min_value=1, max_value=400).map(lambda cents: cents / 100)
caps = st.none() | prices


@given(
    listed=st.lists(st.tuples(prices, st.booleans()), max_size=8),
    cap=caps,
)
async def test_place_rents_the_cheapest_offer_still_there_within_the_cap(
    listed: list[tuple[float, bool]], cap: float | None
) -> None:
    offers = [offer(f"o{index}", price) for index, (price, _) in enumerate(listed)]
    vanished = {f"o{index}" for index, (_, gone) in enumerate(listed) if gone}
    market = StubMarket(offers, errors={i: NoCapacity("gone") for i in vanished})
    s = spec(max_price_per_hour=cap)
    feasible = [o for o in offers if cap is None or o.price_per_hour <= cap]
    available = [o.price_per_hour for o in feasible if o.offer_id not in vanished]
    tried_prices = {o.offer_id: o.price_per_hour for o in offers}

    if not available:
        with pytest.raises(NoCapacity):
            await place(market, s)
        assert len(market.tried) == len(feasible)
        return
    instance = await place(market, s)
    assert instance.price_per_hour == min(available)
    assert cap is None or instance.price_per_hour <= cap
    assert [tried_prices[i] for i in market.tried] == sorted(tried_prices[i] for i in market.tried)
    assert all(i in vanished for i in market.tried[:-1])  # only one create succeeded


entries = st.builds(
    CatalogEntry,
    offer_id=st.uuids().map(str),
    gpu_type=st.sampled_from(["RTX 3090", "RTX 4090", "A100", "H100"]),
    gpu_memory_gb=st.sampled_from([16, 24, 48, 80]),
    price_per_gpu_hour=prices,
    capacity=st.integers(min_value=0, max_value=2),
    max_gpu_count=st.integers(min_value=1, max_value=8),
)


@given(
    catalog=st.lists(entries, max_size=6, unique_by=lambda e: e.offer_id),
    gpu_count=st.integers(min_value=1, max_value=4),
    gpu_memory_gb=st.none() | st.sampled_from([16, 24, 48, 80]),
    cap=st.none() | st.integers(min_value=1, max_value=1600).map(lambda cents: cents / 100),
)
async def test_place_on_the_fake_picks_the_cheapest_feasible_machine(
    catalog: list[CatalogEntry], gpu_count: int, gpu_memory_gb: float | None, cap: float | None
) -> None:
    provider = FakeProvider("vk-test", catalog=catalog, clock=trio_clock())
    s = spec(gpu_count=gpu_count, gpu_memory_gb=gpu_memory_gb, max_price_per_hour=cap)
    feasible = [
        e.price_per_gpu_hour * gpu_count
        for e in catalog
        if e.capacity > 0
        and gpu_count <= e.max_gpu_count
        and (gpu_memory_gb is None or e.gpu_memory_gb >= gpu_memory_gb)
        and (cap is None or e.price_per_gpu_hour * gpu_count <= cap)
    ]
    if not feasible:
        with pytest.raises(NoCapacity, match="no offer matches"):
            await place(provider, s)
        return
    instance = await place(provider, s)
    assert instance.price_per_hour == min(feasible)
    assert cap is None or instance.price_per_hour <= cap
    assert len(provider.ledger()) == 1
