"""The provider contract (providers/base.py) as tests, for every provider we ship.

A test module runs the whole suite against one provider by importing the tests and defining a
``provider_factory`` fixture that returns a ``ProviderFactory``::

    from tests.providers.contract import *  # noqa: F403  (every test_* function)

    @pytest.fixture
    def provider_factory() -> ProviderFactory: ...

Each factory call returns a ``ContractTarget``: a fresh provider object for the given node on
ONE shared cloud (account), plus the few hooks the suite needs that no provider API offers
(scripting what an image does, renting an instance behind our back, failing the next request).
Two calls with the same node name model an agent restart; two different names model two nodes
on one account.

The suite runs on trio's virtual clock (``autojump_clock``); the cloud must read that clock
(the fake: ``trio_clock()``; a simulator: the same function), so boots and exits take no real
time. The cloud must offer at least two machines with one GPU at different prices, with room
for a handful of instances.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import pytest
import trio
import trio.testing

from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InstanceState,
    InvalidSpec,
    LogOptions,
    NoCapacity,
    Offer,
    PaymentRequired,
    Provider,
    ProviderUnavailable,
    RateLimited,
    Requirements,
)
from vk_trio.providers.fake import Workload

NODE = "contract-node"
OTHER_NODE = "contract-other-node"
SLEEPER = "contract/sleeper:1"  # boots, starts, runs forever
JOB = "contract/job:1"  # runs 30 s, prints three lines, exits 3
JOB_LINES = ("first line", "second line", "third line")
JOB_EXIT_CODE = 3
# What a cloud's failures must become, whatever the wire said (a provider may also retry and
# succeed: a retry is its business, a foreign exception is not).
FAILURE_KINDS: dict[str, type[CloudError]] = {
    "rate-limited": RateLimited,
    "unavailable": ProviderUnavailable,
    "payment-required": PaymentRequired,
}
LIFECYCLE = (InstanceState.PROVISIONING, InstanceState.STARTING, InstanceState.RUNNING)


@dataclass(kw_only=True)
class ContractTarget:
    """One provider under test, and hooks into the cloud behind it.

    Attributes:
        provider: the provider object under test.
        node_name: the node it serves.
        script: make instances of an image rented from now on behave as a ``Workload`` says.
        seed_foreign_instance: rent an instance on the same account that no node tagged;
            returns its id.
        fail_next_request: make the cloud answer the provider's next request with a failure
            of one of ``FAILURE_KINDS`` (HTTP 429, 503, 402 for a simulator).
        delete_latency: longest time (s) a deleted instance may still be listed.
        settle_seconds: longest time (s) any step (boot, exit) may take.
        poll_seconds: how often the suite looks again (s).
    """

    provider: Provider
    node_name: str
    script: Callable[[str, Workload], None]
    seed_foreign_instance: Callable[[], str]
    fail_next_request: Callable[[str], None]
    delete_latency: float = 0.0
    settle_seconds: float = 600.0
    poll_seconds: float = 1.0


class ProviderFactory(Protocol):
    def __call__(self, node_name: str = NODE) -> ContractTarget: ...


# --- helpers ----------------------------------------------------------------------------------


def make_spec(
    target: ContractTarget,
    *,
    image: str = SLEEPER,
    pod_uid: str = "pod-uid-1",
    attempt: int = 0,
    restart_policy: str = "Always",
) -> InstanceSpec:
    return InstanceSpec(
        node_name=target.node_name,
        namespace="default",
        pod_name=f"pod-{pod_uid}",
        pod_uid=pod_uid,
        attempt=attempt,
        image=image,
        restart_policy=restart_policy,
        need=Requirements(gpu_count=1),
    )


async def rent(target: ContractTarget, spec: InstanceSpec) -> Instance:
    """Create ``spec`` on the cheapest offer (placement's job, done plainly here)."""
    offers = await target.provider.offers(spec.need)
    assert offers, f"the cloud behind {target.provider.name} has no offer for {spec.need}"
    return await target.provider.create(spec, offers[0])


async def find(target: ContractTarget, instance_id: str) -> Instance | None:
    return next((i for i in await target.provider.list() if i.instance_id == instance_id), None)


async def wait_for(
    target: ContractTarget, instance_id: str, done: Callable[[Instance], bool]
) -> Instance:
    """Poll ``list()`` until the instance satisfies ``done`` (fails after settle_seconds)."""
    with trio.fail_after(target.settle_seconds):
        while True:
            instance = await find(target, instance_id)
            if instance is not None and done(instance):
                return instance
            await trio.sleep(target.poll_seconds)


def vanished(offer: Offer) -> Offer:
    """``offer`` with an id the cloud has never heard of: an offer that is gone."""
    return replace(offer, offer_id="vanished-offer-0000")


def script_images(target: ContractTarget) -> None:
    target.script(SLEEPER, Workload(boot_seconds=10, start_seconds=5))
    target.script(
        JOB,
        Workload(
            boot_seconds=10,
            start_seconds=5,
            run_seconds=30,
            exit_code=JOB_EXIT_CODE,
            logs=JOB_LINES,
        ),
    )


def _target(provider_factory: ProviderFactory, node_name: str = NODE) -> ContractTarget:
    target = provider_factory(node_name)
    script_images(target)
    return target


# --- offers -----------------------------------------------------------------------------------


async def test_offers_are_cheapest_first_and_within_the_price_cap(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    provider = _target(provider_factory).provider
    offers = await provider.offers(Requirements(gpu_count=1))
    prices = [offer.price_per_hour for offer in offers]
    assert len(set(prices)) >= 2, "the contract needs two one-GPU offers at different prices"
    assert prices == sorted(prices)
    assert all(offer.provider == provider.name and offer.gpu_count >= 1 for offer in offers)

    cap = prices[len(prices) // 2]
    capped = await provider.offers(Requirements(gpu_count=1, max_price_per_hour=cap))
    capped_prices = [offer.price_per_hour for offer in capped]
    assert capped_prices == sorted(capped_prices)
    assert capped_prices[0] == prices[0]
    assert max(capped_prices) <= cap


async def test_offers_are_empty_when_nothing_fits_the_price_cap(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    provider = _target(provider_factory).provider
    assert await provider.offers(Requirements(gpu_count=1, max_price_per_hour=0.000001)) == []


# --- create -----------------------------------------------------------------------------------


async def test_check_rejects_a_spec_without_an_image(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    with pytest.raises(InvalidSpec):
        target.provider.check(make_spec(target, image=""))


async def test_create_is_idempotent_by_key(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    spec = make_spec(target)
    offers = await target.provider.offers(spec.need)
    first = await target.provider.create(spec, offers[0])
    again = await target.provider.create(spec, offers[0])
    on_another_offer = await target.provider.create(spec, offers[-1])
    assert first.instance_id == again.instance_id == on_another_offer.instance_id
    assert [i.instance_id for i in await target.provider.list() if i.key == spec.key] == [
        first.instance_id
    ]


async def test_concurrent_creates_with_one_key_rent_one_instance(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    spec = make_spec(target)
    offer = (await target.provider.offers(spec.need))[0]
    results: list[Instance] = []

    async def create() -> None:
        results.append(await target.provider.create(spec, offer))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(create)
    assert len({instance.instance_id for instance in results}) == 1
    assert len([i for i in await target.provider.list() if i.key == spec.key]) == 1


async def test_created_instance_is_tagged_with_node_and_key(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    spec = make_spec(target, pod_uid="pod-uid-tagged", attempt=2)
    instance = await rent(target, spec)
    assert (instance.node_name, instance.pod_uid, instance.attempt) == (NODE, "pod-uid-tagged", 2)
    assert instance.key == spec.key
    assert instance.created_at is not None


async def test_create_on_a_vanished_offer_raises_no_capacity(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    spec = make_spec(target)
    real = (await target.provider.offers(spec.need))[0]
    with pytest.raises(NoCapacity):
        await target.provider.create(spec, vanished(real))
    assert await target.provider.list() == []


async def test_a_new_provider_object_adopts_instances_by_key(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """An agent restart: the new provider object lists the instance and creates no other."""
    before = _target(provider_factory)
    spec = make_spec(before)
    rented = await rent(before, spec)
    after = provider_factory(NODE)
    assert [i.instance_id for i in await after.provider.list()] == [rented.instance_id]
    assert (await rent(after, spec)).instance_id == rented.instance_id


# --- list -------------------------------------------------------------------------------------


async def test_list_returns_only_instances_tagged_with_this_node(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    ours, theirs = _target(provider_factory), _target(provider_factory, OTHER_NODE)
    foreign_id = ours.seed_foreign_instance()
    mine = await rent(ours, make_spec(ours, pod_uid="pod-uid-ours"))
    other = await rent(theirs, make_spec(theirs, pod_uid="pod-uid-theirs"))
    assert [i.instance_id for i in await ours.provider.list()] == [mine.instance_id]
    assert [i.instance_id for i in await theirs.provider.list()] == [other.instance_id]
    assert foreign_id not in {mine.instance_id, other.instance_id}


async def test_instance_progresses_from_provisioning_to_running(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    created = await rent(target, make_spec(target, image=SLEEPER))
    seen = [created.state]
    with trio.fail_after(target.settle_seconds):
        while seen[-1] is not InstanceState.RUNNING:
            await trio.sleep(target.poll_seconds)
            instance = await find(target, created.instance_id)
            assert instance is not None
            if instance.state is not seen[-1]:
                seen.append(instance.state)
    assert all(state in LIFECYCLE for state in seen), seen
    assert [LIFECYCLE.index(s) for s in seen] == sorted(LIFECYCLE.index(s) for s in seen), seen
    running = await find(target, created.instance_id)
    assert running is not None
    assert running.ready
    assert running.started_at is not None


async def test_job_ends_exited_with_the_scripted_exit_code(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    job = await rent(target, make_spec(target, image=JOB, restart_policy="Never"))
    ended = await wait_for(target, job.instance_id, lambda i: i.state is InstanceState.EXITED)
    assert ended.exit_code == JOB_EXIT_CODE
    assert not ended.ready
    assert ended.started_at is not None
    assert ended.finished_at is not None
    assert ended.finished_at >= ended.started_at


# --- delete -----------------------------------------------------------------------------------


async def test_delete_is_idempotent(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    instance = await rent(target, make_spec(target))
    await target.provider.delete(instance.instance_id)
    await target.provider.delete(instance.instance_id)
    await target.provider.delete("no-such-instance-0000")
    await trio.sleep(target.delete_latency + target.poll_seconds)
    await target.provider.delete(instance.instance_id)  # gone is success
    assert await find(target, instance.instance_id) is None


async def test_deleted_instance_leaves_list_within_the_delete_latency(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    instance = await rent(target, make_spec(target))
    await wait_for(target, instance.instance_id, lambda i: i.state is InstanceState.RUNNING)
    deleted_at = trio.current_time()
    await target.provider.delete(instance.instance_id)
    while (listed := await find(target, instance.instance_id)) is not None:
        assert listed.state is InstanceState.TERMINATING
        assert trio.current_time() - deleted_at <= target.delete_latency
        await trio.sleep(target.poll_seconds / 10)


# --- logs -------------------------------------------------------------------------------------


async def test_logs_yield_the_scripted_lines(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    job = await rent(target, make_spec(target, image=JOB, restart_policy="Never"))
    await wait_for(target, job.instance_id, lambda i: i.state is InstanceState.EXITED)
    lines = [line.text async for line in target.provider.logs(job.instance_id, LogOptions())]
    assert lines == list(JOB_LINES)


async def test_followed_logs_end_when_the_job_exits(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    job = await rent(target, make_spec(target, image=JOB, restart_policy="Never"))
    with trio.fail_after(target.settle_seconds):
        opts = LogOptions(follow=True)
        lines = [line.text async for line in target.provider.logs(job.instance_id, opts)]
    assert lines == list(JOB_LINES)


# --- errors -----------------------------------------------------------------------------------


async def test_failures_are_cloud_errors(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock
) -> None:
    target = _target(provider_factory)
    spec = make_spec(target)
    offer = (await target.provider.offers(spec.need))[0]
    with pytest.raises(CloudError):
        target.provider.check(make_spec(target, image=""))
    with pytest.raises(CloudError):
        await target.provider.create(spec, vanished(offer))
    with pytest.raises(CloudError):
        async for _ in target.provider.logs("no-such-instance-0000", LogOptions()):
            pass


@pytest.mark.parametrize("kind", sorted(FAILURE_KINDS))
async def test_cloud_failures_become_their_cloud_errors(
    provider_factory: ProviderFactory, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    target = _target(provider_factory)
    target.fail_next_request(kind)
    try:
        await target.provider.list()
    except CloudError as exc:
        assert isinstance(exc, FAILURE_KINDS[kind]), f"{kind} became {exc!r}"
    assert await target.provider.list() == []  # one failure, then the cloud answers again
