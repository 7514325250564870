"""FakeProvider's own promises: scripting, capacity, faults, the ledger and virtual time.

The contract suite (test_fake_contract.py) proves the fake behaves like a cloud; these prove the
knobs tests turn on it do what they say, because a fake that silently ignores a scripted fault
would let a broken reconciler pass.
"""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

from tests.providers.helpers import BIG, CHEAP, MID, NODE, fake, now, spec
from vk_trio.providers.base import (
    Instance,
    InstanceSpec,
    InstanceState,
    InvalidAnnotation,
    InvalidSpec,
    NoCapacity,
    PaymentRequired,
    Provider,
    ProviderUnavailable,
    RateLimited,
    Requirements,
)
from vk_trio.providers.fake import (
    BOOT_SECONDS,
    EXIT_CODE,
    FAIL,
    RUN_SECONDS,
    START_SECONDS,
    FakeProvider,
    Workload,
)


async def rent(provider: FakeProvider, s: InstanceSpec) -> Instance:
    offers = await provider.offers(s.need)
    return await provider.create(s, offers[0])


async def state_of(provider: FakeProvider, instance_id: str) -> InstanceState | None:
    found = [i.state for i in await provider.list() if i.instance_id == instance_id]
    return found[0] if found else None


def test_fake_provider_satisfies_the_provider_protocol() -> None:
    provider: Provider = fake()
    assert isinstance(provider, Provider)


# --- offers and capacity ------------------------------------------------------------------------


async def test_offers_price_the_whole_instance_and_filter_by_need() -> None:
    provider = fake()
    assert [o.offer_id for o in await provider.offers(Requirements())] == ["cheap", "mid", "big"]
    two = await provider.offers(Requirements(gpu_count=2, max_price_per_hour=1.0))
    assert [(o.offer_id, o.gpu_count, o.price_per_hour) for o in two] == [
        ("cheap", 2, 0.5),
        ("mid", 2, 1.0),
    ]
    assert [o.offer_id for o in await provider.offers(Requirements(gpu_memory_gb=40))] == ["big"]
    assert [o.offer_id for o in await provider.offers(Requirements(gpu_count=6))] == [
        "cheap",
        "mid",
    ]  # big rents at most 4 GPUs


async def test_capacity_is_consumed_by_live_instances_and_freed_on_delete() -> None:
    provider = fake()
    first = await rent(provider, spec(pod_uid="a"))
    assert first.gpu_type == CHEAP.gpu_type
    assert "cheap" not in [o.offer_id for o in await provider.offers(Requirements())]
    second = await rent(provider, spec(pod_uid="b"))
    assert second.gpu_type == MID.gpu_type
    await provider.delete(first.instance_id)
    assert (await provider.offers(Requirements()))[0].offer_id == "cheap"


async def test_capacity_is_freed_when_an_instance_exits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    await rent(provider, spec(annotations={RUN_SECONDS: "60"}))
    assert "cheap" not in [o.offer_id for o in await provider.offers(Requirements())]
    await trio.sleep(10 + 5 + 60)
    assert (await provider.offers(Requirements()))[0].offer_id == "cheap"


async def test_create_on_a_full_or_removed_offer_raises_no_capacity() -> None:
    provider = fake()
    cheap = (await provider.offers(Requirements()))[0]
    await provider.create(spec(pod_uid="a"), cheap)
    with pytest.raises(NoCapacity, match="no free machine"):
        await provider.create(spec(pod_uid="b"), cheap)
    big = (await provider.offers(Requirements(gpu_memory_gb=80)))[0]
    provider.remove_offer(BIG.offer_id)
    with pytest.raises(NoCapacity, match="no longer available"):
        await provider.create(spec(pod_uid="c"), big)
    provider.set_capacity(CHEAP.offer_id, 2)
    assert (await provider.create(spec(pod_uid="d"), cheap)).gpu_type == CHEAP.gpu_type


# --- scripted workloads ---------------------------------------------------------------------------


async def test_instance_lifecycle_follows_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, spec(annotations={RUN_SECONDS: "100", EXIT_CODE: "7"}))
    assert instance.state is InstanceState.PROVISIONING
    timeline = [
        (9.9, InstanceState.PROVISIONING),
        (10, InstanceState.STARTING),
        (15, InstanceState.RUNNING),
        (114.9, InstanceState.RUNNING),
        (115, InstanceState.EXITED),
    ]
    for at, expected in timeline:
        await trio.sleep_until(at)
        assert await state_of(provider, instance.instance_id) is expected, at
    (exited,) = await provider.list()
    assert exited.exit_code == 7
    assert exited.started_at is not None
    assert exited.finished_at is not None
    assert (exited.finished_at - exited.started_at).total_seconds() == 100


async def test_scripts_pick_the_workload_by_image_with_a_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake(default_workload=Workload(boot_seconds=1, start_seconds=1, run_seconds=1))
    provider.script("example/slow:1", Workload(boot_seconds=100))
    slow = await rent(provider, spec(pod_uid="slow", image="example/slow:1"))
    quick = await rent(provider, spec(pod_uid="quick", image="example/quick:1"))
    await trio.sleep(50)
    assert await state_of(provider, slow.instance_id) is InstanceState.PROVISIONING
    assert await state_of(provider, quick.instance_id) is InstanceState.EXITED


async def test_annotations_override_the_image_script(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    provider.script("example/app:1", Workload(boot_seconds=100, run_seconds=100, exit_code=1))
    annotations = {BOOT_SECONDS: "0", START_SECONDS: "0.5", RUN_SECONDS: "2", EXIT_CODE: "42"}
    instance = await rent(provider, spec(annotations=annotations))
    await trio.sleep(2.5)
    (exited,) = await provider.list()
    assert (exited.instance_id, exited.state, exited.exit_code) == (
        instance.instance_id,
        InstanceState.EXITED,
        42,
    )


async def test_run_seconds_inf_runs_forever(autojump_clock: trio.testing.MockClock) -> None:
    provider = fake(default_workload=Workload(run_seconds=1))
    instance = await rent(provider, spec(annotations={RUN_SECONDS: "inf"}))
    await trio.sleep(10 * 365 * 24 * 3600)
    assert await state_of(provider, instance.instance_id) is InstanceState.RUNNING


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (BOOT_SECONDS, "soon"),
        (BOOT_SECONDS, "-1"),
        (BOOT_SECONDS, "inf"),
        (START_SECONDS, "nan"),
        (RUN_SECONDS, "forever"),
        (RUN_SECONDS, "-5"),
        (EXIT_CODE, "1.5"),
        (EXIT_CODE, "256"),
        (EXIT_CODE, "-1"),
        (FAIL, "explode"),
        (FAIL, ""),
    ],
)
async def test_invalid_annotation_names_the_annotation_and_the_value(
    annotation: str, value: str
) -> None:
    provider = fake()
    bad = spec(annotations={annotation: value})
    with pytest.raises(InvalidAnnotation) as raised:
        provider.check(bad)
    assert annotation in raised.value.message
    assert repr(value) in raised.value.message
    with pytest.raises(InvalidAnnotation):
        await rent(provider, bad)
    assert provider.ledger() == []


async def test_check_rejects_an_empty_image_and_a_foreign_node() -> None:
    provider = fake()
    with pytest.raises(InvalidSpec, match="no image"):
        provider.check(spec(image="  "))
    with pytest.raises(InvalidSpec, match="not 'vk-test'"):
        provider.check(spec(node_name="elsewhere"))


async def test_fail_no_capacity_and_create_500_rent_nothing() -> None:
    provider = fake()
    with pytest.raises(NoCapacity, match="scripted"):
        await rent(provider, spec(pod_uid="a", annotations={FAIL: "no-capacity"}))
    with pytest.raises(ProviderUnavailable, match="nothing was created"):
        await rent(provider, spec(pod_uid="b", annotations={FAIL: "create-500"}))
    assert provider.ledger() == []


async def test_fail_create_500_created_rents_once_and_the_retry_adopts_it() -> None:
    provider = fake()
    job = spec(annotations={FAIL: "create-500-created"})
    with pytest.raises(ProviderUnavailable, match="was created"):
        await rent(provider, job)
    (orphan,) = await provider.list()
    adopted = await rent(provider, job)
    assert adopted.instance_id == orphan.instance_id
    assert len(provider.ledger()) == 1


async def test_fail_image_error_ends_failed_with_a_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(
        provider, spec(image="example/missing:1", annotations={FAIL: "image-error"})
    )
    await trio.sleep(10)
    (failed,) = await provider.list()
    assert failed.instance_id == instance.instance_id
    assert failed.state is InstanceState.FAILED
    assert "example/missing:1" in failed.message
    assert failed.exit_code is None


# --- scripted faults ------------------------------------------------------------------------------


async def test_fail_next_raises_queued_errors_in_order_then_recovers() -> None:
    provider = fake()
    provider.fail_next("list", RateLimited("slow down", retry_after=7), ProviderUnavailable("503"))
    with pytest.raises(RateLimited) as limited:
        await provider.list()
    assert limited.value.retry_after == 7
    with pytest.raises(ProviderUnavailable):
        await provider.list()
    assert await provider.list() == []


async def test_fail_next_before_effect_rents_nothing() -> None:
    provider = fake()
    provider.fail_next("create", PaymentRequired("no credits"))
    with pytest.raises(PaymentRequired):
        await rent(provider, spec())
    assert provider.ledger() == []


async def test_fail_next_after_effect_create_rents_then_errors_and_retry_adopts() -> None:
    provider = fake()
    provider.fail_next("create", ProviderUnavailable("timeout"), after_effect=True)
    with pytest.raises(ProviderUnavailable):
        await rent(provider, spec())
    (rented,) = provider.live_instances()
    assert (await rent(provider, spec())).instance_id == rented.instance_id
    assert len(provider.ledger()) == 1


async def test_fail_next_after_effect_delete_deletes_then_errors() -> None:
    provider = fake()
    instance = await rent(provider, spec())
    provider.fail_next("delete", ProviderUnavailable("timeout"), after_effect=True)
    with pytest.raises(ProviderUnavailable):
        await provider.delete(instance.instance_id)
    assert await provider.list() == []


def test_fail_next_refuses_unknown_methods_and_late_errors_on_reads() -> None:
    provider = fake()
    with pytest.raises(ValueError, match="unknown method"):
        provider.fail_next("reboot", NoCapacity("x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="create and delete only"):
        provider.fail_next("list", NoCapacity("x"), after_effect=True)


async def test_latency_delays_each_call_on_trio_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    provider.set_latency("create", 2.5)
    provider.set_latency("list", 0.5)
    await rent(provider, spec())
    assert trio.current_time() == 2.5
    await provider.list()
    assert trio.current_time() == 3.0


async def test_latency_can_be_a_range_drawn_per_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    provider.set_latency("list", (1.0, 3.0))
    took = []
    for _ in range(20):
        start = trio.current_time()
        await provider.list()
        took.append(trio.current_time() - start)
    assert all(1.0 <= t <= 3.0 for t in took)
    assert len(set(took)) > 1


async def test_call_count_counts_each_method(autojump_clock: trio.testing.MockClock) -> None:
    provider = fake()
    provider.fail_next("list", ProviderUnavailable("503"))
    with trio.move_on_after(35):
        while True:  # a reconcile loop listing once every 10 s
            with contextlib.suppress(ProviderUnavailable):
                await provider.list()
            await trio.sleep(10)
    assert provider.call_count("list") == 4
    assert provider.call_count("create") == 0
    provider.reset_call_counts()
    assert provider.call_count("list") == 0


# --- ownership ------------------------------------------------------------------------------------


async def test_foreign_instances_are_never_listed_nor_deleted() -> None:
    provider = fake()
    untagged = provider.seed_foreign_instance()
    other_node = provider.seed_foreign_instance(node_name="vk-other", pod_uid="uid-x")
    tagged_no_pod = provider.seed_foreign_instance(node_name=NODE)
    mine = await rent(provider, spec())
    for instance in await provider.list():  # what a reconciler would do with orphans
        if instance.instance_id != mine.instance_id:
            await provider.delete(instance.instance_id)
    for foreign in (untagged, other_node, tagged_no_pod):
        await provider.delete(foreign)
    assert [i.instance_id for i in await provider.list()] == [mine.instance_id]
    live = {i.instance_id for i in provider.live_instances(all_nodes=True)}
    assert {untagged, other_node, tagged_no_pod} <= live
    assert [e.instance_id for e in provider.ledger()] == [mine.instance_id]


async def test_siblings_share_the_market_but_not_their_instances() -> None:
    ours = fake()
    theirs = ours.sibling("vk-other")
    await rent(ours, spec(pod_uid="a"))
    rented = await rent(theirs, spec(node_name="vk-other", pod_uid="a"))
    assert rented.gpu_type == MID.gpu_type  # the cheap machine is taken by our node
    assert [i.node_name for i in await theirs.list()] == ["vk-other"]
    assert [i.node_name for i in await ours.list()] == [NODE]


# --- delete and the ledger --------------------------------------------------------------------


async def test_delete_latency_keeps_the_instance_terminating_then_gone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake(delete_latency=30)
    instance = await rent(provider, spec())
    await trio.sleep(20)
    await provider.delete(instance.instance_id)
    await trio.sleep(29.9)
    assert await state_of(provider, instance.instance_id) is InstanceState.TERMINATING
    await trio.sleep(0.1)
    assert await provider.list() == []
    (entry,) = provider.ledger()
    assert entry.deleted_at == now()


async def test_ledger_bills_from_create_until_delete(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    instance = await rent(provider, spec(gpu_count=2))  # cheap: 2 x 0.25 $/h
    await trio.sleep(1800)
    assert provider.instance_seconds() == 1800
    assert provider.cost() == pytest.approx(0.25)
    await provider.delete(instance.instance_id)
    await trio.sleep(3600)
    assert provider.instance_seconds(instance.instance_id) == 1800
    assert provider.cost(instance.instance_id) == pytest.approx(0.25)
    assert provider.cost(until=now() - 3600 - 900) == pytest.approx(0.125)


async def test_nothing_is_billed_after_a_job_instance_is_deleted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake()
    job = await rent(provider, spec(annotations={RUN_SECONDS: "60"}))
    await trio.sleep(75)
    assert await state_of(provider, job.instance_id) is InstanceState.EXITED
    assert [e.instance_id for e in provider.billed_after(now())] == [job.instance_id]
    await provider.delete(job.instance_id)
    ended = now()
    await trio.sleep(600)
    assert provider.billed_after(ended) == []
    assert provider.live_instances() == []
    assert [e.instance_id for e in provider.ledger()] == [job.instance_id]
