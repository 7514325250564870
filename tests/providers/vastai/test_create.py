"""Renting survives Vast.ai's races and refusals: exactly one instance per pod, none leaked."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.providers.vastai.conftest import NODE, MakeProvider, spec
from vk_trio.providers.base import (
    Instance,
    InstanceSpec,
    InstanceState,
    NoCapacity,
    PaymentRequired,
    ProviderUnavailable,
    Requirements,
)
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.translate import label
from vk_trio.sim.vastai import VastSim


async def place(provider: VastProvider, pod: InstanceSpec) -> Instance:
    """What placement does: the cheapest offer first, the next one when it is gone."""
    for offer in await provider.offers(pod.need):
        try:
            return await provider.create(pod, offer)
        except NoCapacity:
            continue
    raise AssertionError("no offer could be rented")


def per_pod(sim: VastSim) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for instance in sim.instances():
        counts[instance.label] = counts.get(instance.label, 0) + 1
    return counts


async def test_an_offer_that_vanished_moves_to_the_next_one(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    pod = spec()
    offers = await provider.offers(pod.need)
    sim.marketplace.remove(int(offers[0].offer_id))  # withdrawn: 404
    sim.marketplace.set_available(int(offers[1].offer_id), 0)  # rented by someone else: 410
    with pytest.raises(NoCapacity):
        await provider.create(pod, offers[0])
    with pytest.raises(NoCapacity):
        await provider.create(pod, offers[1])
    instance = await provider.create(pod, offers[2])
    assert per_pod(sim) == {label(pod): 1}
    assert sim.instances()[0].id == int(instance.instance_id)
    assert sim.instances()[0].offer.id == int(offers[2].offer_id)


async def test_a_429_storm_still_rents_exactly_one_instance_per_pod(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.fail_next(
        "createInstance", status=429, body={"detail": "API requests too frequent"}, times=5
    )
    sim.fail_next("showInstances", status=429, text="API requests too frequent", times=5)
    ours, other_node = make_provider(), make_provider("another-node")
    pods = [spec(pod_uid=f"pod-{i}") for i in range(4)]
    theirs = [spec(node_name="another-node", pod_uid=f"their-{i}") for i in range(4)]

    async def rent_twice(provider: VastProvider, pod: InstanceSpec) -> None:
        await place(provider, pod)
        await place(provider, pod)  # the reconciler asks again: same instance

    async with trio.open_nursery() as nursery:
        for pod in pods:
            nursery.start_soon(rent_twice, ours, pod)
        for pod in theirs:
            nursery.start_soon(rent_twice, other_node, pod)
    assert per_pod(sim) == {label(p): 1 for p in pods + theirs}
    assert sim.limiter.refused  # two providers on one account did meet the real limits
    assert sorted(i.pod_uid for i in await ours.list()) == sorted(p.pod_uid for p in pods)


async def test_an_error_that_carries_a_new_contract_destroys_that_instance(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    pod = spec()
    offers = await provider.offers(pod.need)
    sim.error_with_contract_next()
    with pytest.raises(NoCapacity, match="destroyed"):
        await provider.create(pod, offers[0])
    assert sim.instances() == []
    assert sim.ledger.accruing() == []
    assert len(sim.ledger.charges()) == 1  # it did exist, briefly
    assert (await provider.create(pod, offers[1])).state is InstanceState.PROVISIONING
    assert per_pod(sim) == {label(pod): 1}


async def test_a_create_whose_answer_was_lost_is_found_by_label_not_repeated(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    pod = spec()
    offer = (await provider.offers(pod.need))[0]
    sim.fail_next("createInstance", status=504, text="gateway timeout", after=True)
    instance = await provider.create(pod, offer)
    assert [i.id for i in sim.instances()] == [int(instance.instance_id)]


async def test_a_create_that_failed_before_renting_raises_and_a_retry_rents_once(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    pod = spec()
    offer = (await provider.offers(pod.need))[0]
    sim.fail_next("createInstance", status=503, text="upstream connect error")
    with pytest.raises(ProviderUnavailable):
        await provider.create(pod, offer)
    assert sim.instances() == []
    await provider.create(pod, offer)
    assert per_pod(sim) == {label(pod): 1}


async def test_a_restarted_agent_adopts_its_instances_and_rents_nothing_new(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    before = make_provider()
    pods = [spec(pod_uid=f"pod-{i}") for i in range(3)]
    rented = [await place(before, pod) for pod in pods]
    await before.aclose()
    after = make_provider()
    assert sorted(i.instance_id for i in await after.list()) == sorted(
        i.instance_id for i in rented
    )
    again = [await place(after, pod) for pod in pods]
    assert [i.instance_id for i in again] == [i.instance_id for i in rented]
    assert len(sim.instances()) == 3


async def test_there_is_no_limit_on_pods_per_node(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    for offer in sim.marketplace.all():
        sim.marketplace.set_available(offer.id, 50)
    pods = [spec(pod_uid=f"pod-{i:03d}") for i in range(60)]
    for pod in pods:
        await place(provider, pod)
    listed = await provider.list()  # more than two pages of 25
    assert sorted(i.pod_uid for i in listed) == sorted(p.pod_uid for p in pods)


async def test_list_shows_only_this_nodes_instances(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    ours, theirs = make_provider(), make_provider("other-node")
    mine = await place(ours, spec())
    other = await place(theirs, spec(node_name="other-node", pod_uid="other-pod"))
    sim.rent_foreign(label="my notebook")
    sim.rent_foreign(label=f"vk-trio/{NODE}-2/x.0")
    sim.rent_foreign()
    assert [i.instance_id for i in await ours.list()] == [mine.instance_id]
    assert [i.instance_id for i in await theirs.list()] == [other.instance_id]


async def test_a_fresh_instance_the_account_does_not_show_yet_is_still_listed(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """The create-then-read lag must never make the agent rent a second instance."""
    provider = make_provider()
    pod = spec()
    offer = (await provider.offers(pod.need))[0]
    instance = await provider.create(pod, offer)
    hidden = sim.instance(int(instance.instance_id))
    assert hidden is not None
    sim.state.instances.pop(hidden.id)  # the account's list lags behind the create
    listed = await provider.list()
    assert [(i.instance_id, i.state) for i in listed] == [
        (instance.instance_id, InstanceState.PROVISIONING)
    ]
    assert (await provider.create(pod, offer)).instance_id == instance.instance_id
    sim.state.instances[hidden.id] = hidden
    assert [i.instance_id for i in await provider.list()] == [instance.instance_id]


async def test_payment_and_offer_problems_become_their_errors(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    offer = (await provider.offers(Requirements()))[0]
    body = {"success": False, "error": "missing_billing", "msg": "add credit to your account"}
    sim.fail_next("createInstance", status=400, body=body)
    with pytest.raises(PaymentRequired):
        await provider.create(spec(), offer)
    assert sim.instances() == []
