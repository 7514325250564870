"""The router: one node, several clouds (in-memory fakes named after the clouds, virtual time).

Cheapest first across clouds with ties to the ``--provider`` order, the neutral annotations,
failover (vanished offers, outages with a growing cool-down, refused payment), no double
renting after a create of unknown outcome, the node-wide budget under a burst, and a list that
keeps a failing cloud's last answer but needs every cloud on its first call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
import trio.testing

from vk_trio.providers.base import (
    InstanceSpec,
    InvalidAnnotation,
    InvalidSpec,
    NoCapacity,
    OutcomeUnknown,
    PaymentRequired,
    ProviderUnavailable,
    Requirements,
)
from vk_trio.providers.budget import BudgetExceeded
from vk_trio.providers.fake import CatalogEntry, FakeProvider, trio_clock
from vk_trio.providers.health import COOLDOWN_INITIAL, PAYMENT_PROBE, CloudState
from vk_trio.providers.placement import place
from vk_trio.providers.router import CLOUD_ANNOTATION, Router

NODE = "multi"


def entry(
    offer_id: str, gpu: str, price: float, *, memory: float = 24, capacity: int = 4
) -> CatalogEntry:
    return CatalogEntry(
        offer_id=offer_id,
        gpu_type=gpu,
        gpu_memory_gb=24,
        price_per_gpu_hour=price,
        capacity=capacity,
    )


def cloud(name: str, *entries: CatalogEntry) -> FakeProvider:
    return FakeProvider(NODE, name=name, catalog=entries, clock=trio_clock())


def spec(uid: str = "pod-1", notes: dict[str, str] | None = None) -> InstanceSpec:
    return InstanceSpec(
        node_name=NODE,
        namespace="default",
        pod_name=uid,
        pod_uid=uid,
        image="example/app:1",
        need=Requirements(annotations=notes or {}),
    )


def gpus(uid: str, models: str) -> InstanceSpec:
    """A pod that asks for ``models`` with ``vk-trio.io/gpu-types``."""
    return spec(uid, {"vk-trio.io/gpu-types": models})


@pytest.fixture
def clouds() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    runpod = cloud("runpod", entry("rp-4090", "RTX 4090", 0.40), entry("rp-l40s", "L40S", 0.80))
    vastai = cloud("vastai", entry("va-4090", "RTX 4090", 0.30), entry("va-3090", "RTX 3090", 0.20))
    yield runpod, vastai


# --- choice ----------------------------------------------------------------------------------


async def test_offers_of_both_clouds_are_merged_cheapest_first_with_ties_to_the_provider_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runpod = cloud("runpod", entry("rp-4090", "RTX 4090", 0.30), entry("rp-a", "L40S", 0.50))
    vastai = cloud("vastai", entry("va-4090", "RTX 4090", 0.30), entry("va-b", "RTX 3090", 0.10))
    router = Router([runpod, vastai])
    offers = await router.offers(Requirements())
    assert [(o.provider, o.offer_id) for o in offers] == [
        ("vastai", "va-b"),
        ("runpod", "rp-4090"),  # same price as va-4090: runpod is named first
        ("vastai", "va-4090"),
        ("runpod", "rp-a"),
    ]
    assert offers[1].details["model"] == "RTX 4090"
    flipped = Router([vastai, runpod])
    assert [o.provider for o in (await flipped.offers(Requirements()))[1:3]] == ["vastai", "runpod"]


async def test_a_pod_is_rented_on_the_cheaper_cloud_and_tagged_with_it(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    instance = await place(router, gpus("p1", "RTX 4090"))
    assert instance.provider == "vastai" and instance.price_per_hour == 0.30
    assert instance.annotations[CLOUD_ANNOTATION] == "vastai"
    assert [i.instance_id for i in vastai.live_instances()] == [instance.instance_id]
    assert runpod.live_instances() == []
    listed = await router.list()
    assert [(i.provider, i.instance_id) for i in listed] == [("vastai", instance.instance_id)]
    await router.delete(instance.instance_id)  # routed to Vast.ai by the instance's cloud
    assert vastai.live_instances() == []


async def test_neutral_annotations_restrict_clouds_models_and_price(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    router = Router(list(clouds))
    only_runpod = await router.offers(Requirements(annotations={"vk-trio.io/providers": "runpod"}))
    assert {o.provider for o in only_runpod} == {"runpod"}
    l40s = await router.offers(Requirements(annotations={"vk-trio.io/gpu-types": "l40s"}))
    assert [o.offer_id for o in l40s] == ["rp-l40s"]
    capped = await router.offers(Requirements(annotations={"vk-trio.io/max-price": "0.35"}))
    assert [o.offer_id for o in capped] == ["va-3090", "va-4090"]
    preferred = await router.offers(
        Requirements(annotations={"vk-trio.io/gpu-types": "RTX 3090, RTX 4090"})
    )
    assert [o.offer_id for o in preferred] == ["va-3090", "va-4090", "rp-4090"]
    big = await router.offers(Requirements(annotations={"vk-trio.io/gpu-memory": "40"}))
    assert big == []  # every card here has 24 GB


@pytest.mark.parametrize(
    ("notes", "error", "needle"),
    [
        ({"vk-trio.io/gpu-types": "RTX 9999"}, InvalidAnnotation, "RTX 9999"),
        ({"vk-trio.io/gpu-types": " , "}, InvalidAnnotation, "empty"),
        ({"vk-trio.io/providers": "aws"}, InvalidAnnotation, "aws"),
        ({"vk-trio.io/providers": "fake"}, InvalidSpec, "none of this node's clouds"),
        ({"vk-trio.io/max-price": "cheap"}, InvalidAnnotation, "max-price"),
        ({"vk-trio.io/max-price": "0"}, InvalidAnnotation, "max-price"),
        ({"vk-trio.io/gpu-memory": "big"}, InvalidAnnotation, "gpu-memory"),
    ],
)
async def test_a_bad_neutral_annotation_names_itself(
    clouds: tuple[FakeProvider, FakeProvider],
    notes: dict[str, str],
    error: type[Exception],
    needle: str,
) -> None:
    router = Router(list(clouds))
    with pytest.raises(error, match=needle):
        router.check(spec("p1", notes))


# --- failover --------------------------------------------------------------------------------


async def test_a_vanished_offer_moves_on_to_the_other_cloud(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    vastai.fail_next("create", NoCapacity("gone"), NoCapacity("gone"))
    instance = await place(router, gpus("p1", "RTX 4090"))
    assert instance.provider == "runpod" and instance.instance_id in {
        i.instance_id for i in runpod.live_instances()
    }


async def test_an_outage_cools_the_cloud_down_longer_each_time_and_it_serves_again_after(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([vastai, runpod])
    vastai.fail_next("offers", ProviderUnavailable("503 Service Unavailable"))
    first = await place(router, gpus("p1", "RTX 4090"))
    assert first.provider == "runpod"
    assert router.health.state("vastai") is CloudState.COOLING_DOWN
    calls = vastai.call_count("offers")
    second = await place(router, gpus("p2", "RTX 4090"))
    assert second.provider == "runpod" and vastai.call_count("offers") == calls  # not asked
    await trio.sleep(COOLDOWN_INITIAL + 0.1)
    vastai.fail_next("offers", ProviderUnavailable("503"))  # still failing: twice as long
    await router.offers(Requirements())
    assert router.health.state("vastai") is CloudState.COOLING_DOWN
    await trio.sleep(COOLDOWN_INITIAL + 0.1)
    assert router.health.state("vastai") is CloudState.COOLING_DOWN
    await trio.sleep(COOLDOWN_INITIAL)
    third = await place(router, gpus("p3", "RTX 4090"))
    assert third.provider == "vastai"  # cheaper again, and answering
    assert [n.state for n in router.health.notices] == [
        CloudState.COOLING_DOWN,
        CloudState.OK,
    ]


async def test_a_cloud_refusing_payment_is_skipped_until_a_probe_succeeds(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([vastai, runpod])
    vastai.fail_next("create", PaymentRequired("insufficient balance"))
    instance = await place(router, gpus("p1", "RTX 4090"))
    assert instance.provider == "runpod"
    assert router.health.state("vastai") is CloudState.PAYMENT_REFUSED
    notice = router.health.notices[-1]
    assert notice.cloud == "vastai" and notice.reason == "PaymentRequired"
    assert "vastai" in notice.message
    creates = vastai.call_count("create")
    await place(router, gpus("p2", "RTX 4090"))
    assert vastai.call_count("create") == creates
    await trio.sleep(PAYMENT_PROBE + 1)
    probe = await place(router, gpus("p3", "RTX 4090"))
    assert probe.provider == "vastai"
    assert router.health.state("vastai") is CloudState.OK


async def test_a_pod_waits_only_when_no_cloud_can_serve_it_and_hears_from_each(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    runpod.fail_next("offers", ProviderUnavailable("503"))
    vastai.fail_next("offers", ProviderUnavailable("timeout"))
    with pytest.raises(ProviderUnavailable, match=r"runpod: .*503.*vastai: .*timeout"):
        await place(router, spec("p1"))
    runpod.fail_next("create", PaymentRequired("no credit"))
    await trio.sleep(60)
    with pytest.raises(PaymentRequired, match=r"^runpod: no credit"):  # only RunPod sells it
        await place(router, gpus("p2", "L40S"))
    vastai.fail_next("create", NoCapacity("sold"))
    with pytest.raises(NoCapacity, match=r"vanished.*vastai: sold"):  # RunPod is not asked
        await place(router, gpus("p3", "RTX 4090"))
    assert router.health.state("runpod") is CloudState.PAYMENT_REFUSED


# --- no double renting -----------------------------------------------------------------------


async def test_a_create_that_timed_out_but_rented_is_adopted_not_rented_again_elsewhere(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    vastai.fail_next("create", ProviderUnavailable("timed out"), after_effect=True)
    instance = await place(router, gpus("p1", "RTX 4090"))
    assert instance.provider == "vastai"
    assert len(vastai.live_instances()) == 1 and runpod.live_instances() == []


async def test_a_create_of_unknown_outcome_waits_for_its_cloud_before_any_other(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    vastai.fail_next("create", ProviderUnavailable("timed out"), after_effect=True)
    vastai.fail_next("list", ProviderUnavailable("503"), ProviderUnavailable("503"))
    with pytest.raises(OutcomeUnknown, match="vastai"):
        await place(router, gpus("p1", "RTX 4090"))
    assert runpod.live_instances() == []
    assert router.budget.committed() == pytest.approx(0.30)  # it may bill: it counts
    with pytest.raises(OutcomeUnknown):  # the cloud still cannot be asked
        await place(router, gpus("p1", "RTX 4090"))
    await trio.sleep(COOLDOWN_INITIAL * 4)
    adopted = await place(router, gpus("p1", "RTX 4090"))
    assert adopted.provider == "vastai" and runpod.live_instances() == []
    assert len(vastai.live_instances()) == 1
    assert router.budget.committed() == pytest.approx(0.30)


async def test_a_create_that_failed_and_rented_nothing_moves_on_to_the_other_cloud(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    vastai.fail_next("create", ProviderUnavailable("502 Bad Gateway"))
    instance = await place(router, gpus("p1", "RTX 4090"))
    assert instance.provider == "runpod" and vastai.live_instances() == []
    assert router.health.state("vastai") is CloudState.COOLING_DOWN


# --- budget ----------------------------------------------------------------------------------


async def test_the_budget_holds_under_a_burst_of_500_concurrent_placements(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runpod = cloud("runpod", entry("rp", "RTX 4090", 0.40, capacity=1000))
    vastai = cloud("vastai", entry("va", "RTX 3090", 0.25, capacity=1000))
    for fake in (runpod, vastai):
        fake.set_latency("create", 0.5)
    router = Router([runpod, vastai], max_node_price=20.0)
    placed: list[str] = []
    waiting: list[BudgetExceeded] = []

    async def one(uid: str) -> None:
        try:
            placed.append((await place(router, spec(uid))).provider)
        except BudgetExceeded as exc:
            waiting.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(500):
            nursery.start_soon(one, f"p{i}")
    spend = sum(i.price_per_hour for f in (runpod, vastai) for i in f.live_instances())
    assert spend <= 20.0 + 1e-9
    assert placed.count("vastai") == 80 and len(waiting) == 420  # 80 x $0.25 = $20
    message = waiting[0].message
    assert "$20.000/h" in message and "$0.250/h" in message and "vastai" in message
    assert waiting[0].retry_after


async def test_a_pod_over_budget_runs_once_others_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runpod = cloud("runpod", entry("rp", "RTX 4090", 0.40))
    router = Router([runpod], max_node_price=0.5)
    first = await place(router, spec("p1"))
    with pytest.raises(BudgetExceeded, match=r"costs \$0.400/h"):
        await place(router, spec("p2"))
    await router.delete(first.instance_id)
    await trio.sleep(1)
    await router.list()
    second = await place(router, spec("p2"))
    assert second.pod_uid == "p2"
    assert router.budget.left() == pytest.approx(0.1)


# --- list ------------------------------------------------------------------------------------


async def test_the_first_list_needs_every_cloud_later_ones_keep_a_failing_clouds_last_answer(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    on_vast = await place(router, gpus("p1", "RTX 4090"))
    on_runpod = await place(router, gpus("p2", "L40S"))
    fresh = Router([runpod, vastai])  # a restart: nothing known yet
    vastai.fail_next("list", ProviderUnavailable("503"))
    with pytest.raises(ProviderUnavailable, match="first list"):
        await fresh.list()
    assert {(i.provider, i.pod_uid) for i in await fresh.list()} == {
        ("vastai", "p1"),
        ("runpod", "p2"),
    }
    vastai.fail_next("list", ProviderUnavailable("503"))
    assert {i.instance_id for i in await fresh.list()} == {
        on_vast.instance_id,
        on_runpod.instance_id,
    }
    assert fresh.health.state("vastai") is CloudState.COOLING_DOWN
    await fresh.delete(on_vast.instance_id)
    await fresh.delete(on_runpod.instance_id)
    assert [i for f in clouds for i in f.live_instances()] == []


async def test_a_list_that_settles_an_unknown_create_while_it_is_being_asked_is_no_error(
    clouds: tuple[FakeProvider, FakeProvider], autojump_clock: trio.testing.MockClock
) -> None:
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    vastai.fail_next("create", ProviderUnavailable("timed out"), after_effect=True)
    vastai.fail_next("list", ProviderUnavailable("503"), ProviderUnavailable("503"))
    with pytest.raises(OutcomeUnknown):
        await place(router, gpus("p1", "RTX 4090"))
    with pytest.raises(ProviderUnavailable):  # still unknown: Vast.ai cannot list yet
        await router.list()
    await trio.sleep(1)
    vastai.set_latency("list", 1.0)  # the retry asks Vast.ai; a list of the node overtakes it
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.list)
        await trio.sleep(0.5)
        adopted = await place(router, gpus("p1", "RTX 4090"))
    assert adopted.provider == "vastai" and len(vastai.live_instances()) == 1
    assert runpod.live_instances() == []
    assert router.budget.committed() == pytest.approx(0.30)


async def test_an_unexpected_failure_of_one_cloud_leaves_the_other_serving(
    clouds: tuple[FakeProvider, FakeProvider],
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug or a hostile answer in one cloud (not a CloudError) is that cloud's outage: the
    other cloud's offers and instances still come, and the failing cloud cools down."""
    runpod, vastai = clouds
    router = Router([runpod, vastai])
    on_vast = await place(router, gpus("p1", "RTX 4090"))
    await router.list()

    async def broken(*args: object) -> object:
        raise ValueError("a field nobody expected")

    monkeypatch.setattr(vastai, "list", broken)
    monkeypatch.setattr(vastai, "offers", broken)
    assert {i.instance_id for i in await router.list()} == {on_vast.instance_id}  # last answer
    assert router.health.state("vastai") is CloudState.COOLING_DOWN
    offers = await router.offers(Requirements())
    assert {o.provider for o in offers} == {"runpod"}
    instance = await place(router, gpus("p2", "RTX 4090"))
    assert instance.provider == "runpod"
    monkeypatch.undo()
    assert "vastai" in await router.explain_no_offers(Requirements(gpu_count=64))
