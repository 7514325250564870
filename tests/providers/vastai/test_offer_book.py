"""One offer search serves many waiting pods; each offer goes to one pod; creates stop for a pod
that went away; the wrapper's markers give exit codes and restarts, read in rations."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import trio
import trio.testing

from tests.providers.vastai.conftest import MakeProvider, spec
from vk_trio.providers.base import CreateAborted, InstanceSpec, InstanceState, Requirements
from vk_trio.providers.placement import place
from vk_trio.providers.vastai import selection, translate
from vk_trio.providers.vastai.selection import Policy, select, union_query
from vk_trio.sim.vastai import SimOffer, VastSim, Workload
from vk_trio.sim.vastai.ratelimit import DEFAULT_INTERVALS

CREATE = DEFAULT_INTERVALS["createInstance"]


def market(sim: VastSim, count: int) -> None:
    ids = itertools.count(6_000_001)
    for i in range(count):
        sim.marketplace.add(
            SimOffer(
                id=next(ids),
                machine_id=70_000 + i,
                gpu_name="RTX 4090",
                gpu_ram=24_564,
                dph_base=round(0.30 + 0.002 * i, 3),
                available=1,
            )
        )


async def test_fifty_waiting_pods_are_served_by_one_search_each_on_its_own_offer(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 10: pods were placed one search at a time (the fifth of five rented at ~31 s).
    Now one search serves all fifty; the creates then go at the create endpoint's own pace."""
    market(sim, 70)
    provider = make_provider()
    pods = [spec(pod_uid=f"pod-{i:03d}") for i in range(50)]
    rented: dict[str, str] = {}
    start = trio.current_time()

    async def one(pod_spec: InstanceSpec) -> None:
        instance = await place(provider, pod_spec)
        rented[instance.pod_uid] = instance.instance_id

    async with trio.open_nursery() as nursery:
        for pod in pods:
            nursery.start_soon(one, pod)
    took = trio.current_time() - start
    searches = [e for e in sim.journal if e.operation == "searchOffers"]
    creates = [e for e in sim.journal if e.operation == "createInstance"]
    assert len(rented) == 50
    assert len(searches) <= 3  # within three search windows' worth of searches
    assert [e.status for e in creates] == [200] * 50  # no double buy, no vanished offer
    offers = {e.path for e in creates}
    assert len(offers) == 50  # fifty offers, one pod each
    # the floor is the create endpoint: one every 4.5 s (plus our margin); searches add little
    assert took <= 50 * CREATE * 1.1 + 10


async def test_an_offer_that_vanished_makes_the_next_search_and_the_pods_move_on(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    market(sim, 10)
    provider = make_provider()
    await provider.offers(Requirements(gpu_count=1))
    cheapest = min(sim.marketplace.all(), key=lambda o: o.dph_base)
    sim.marketplace.remove(cheapest.id)  # someone else took it after our search
    instance = await place(provider, spec(pod_uid="late"))
    assert instance.instance_id
    assert provider.book.searches == 1  # the vanished offer did not need a search to move on
    await provider.offers(Requirements(gpu_count=1))
    assert provider.book.searches == 2  # but the next pod sees a fresh book


async def test_a_pod_the_search_was_not_made_for_waits_for_a_search_of_its_own(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    await provider.offers(Requirements(gpu_count=1))
    await provider.offers(Requirements(gpu_count=1))
    assert provider.book.searches == 1
    big = Requirements(gpu_count=2)
    found = await provider.offers(big)
    assert provider.book.searches == 2
    assert all(o.gpu_count == 2 for o in found)


def test_one_query_covers_every_waiting_selection_at_its_loosest() -> None:
    policy = Policy()
    a = select(Requirements(gpu_count=1, annotations={"vast.ai/gpu-type": "RTX 4090"}), policy)
    b = select(
        Requirements(
            gpu_count=2,
            max_price_per_hour=3.0,
            annotations={"vast.ai/gpu-type": "RTX 3090", "vast.ai/memory": "20GB"},
        ),
        policy,
    )
    query = union_query([a, b], policy, wanted=300)
    assert query["num_gpus"] == {"in": [1, 2]}
    assert query["gpu_name"] == {"in": ["RTX 3090", "RTX 4090"]}
    assert "gpu_ram" not in query and "dph_total" not in query  # a has neither bound
    assert query["limit"] == 600
    assert union_query([a], policy) == {**selection.search_query(a, policy), "limit": 64}


async def test_a_pod_deleted_while_its_create_waits_for_a_turn_rents_nothing(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Defect 1: a Job pod deleted by activeDeadlineSeconds was rented 5 s after its deletion,
    while the create waited for a rate-limit turn."""
    provider = make_provider()
    first = await place(provider, spec(pod_uid="first"))  # the create endpoint's turn is used
    wanted = [True]
    doomed = dataclasses.replace(spec(pod_uid="doomed"), still_wanted=lambda: wanted[0])
    outcome: list[BaseException] = []

    async def create() -> None:
        with pytest.raises(CreateAborted) as raised:
            await place(provider, doomed)
        outcome.append(raised.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create)
        await trio.sleep(1)
        wanted[0] = False  # deleted while waiting for the next create turn
    assert len(outcome) == 1
    labels = [i.label for i in sim.instances()]
    assert labels == [f"vk-trio/vk-vast/{first.pod_uid}.0"]


async def test_an_always_pod_restarts_in_place_and_its_runs_are_counted(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Defect 2: a container that ran 60 s and exited 0 under Always was ContainerCannotRun
    (128), then rented again for every restart. Now the wrapper restarts it on the same
    instance and the markers give restartCount and the exit code."""
    sim.script("web:1", Workload(run_seconds=60, exit_code=0))
    provider = make_provider()
    instance = await place(provider, spec(image="web:1", command=("serve",)))
    seen = None
    for _ in range(40):
        await trio.sleep(10)
        (seen,) = await provider.list()
    assert seen is not None
    assert seen.instance_id == instance.instance_id and seen.state is InstanceState.RUNNING
    assert seen.restarts >= 3
    assert seen.last_exit is not None and seen.last_exit.code == 0
    assert len(sim.instances()) == 1  # one rental


async def test_marker_reads_are_rationed_so_a_list_stays_quick(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    market(sim, 30)
    sim.script("job:1", Workload(run_seconds=None))
    provider = make_provider()
    for i in range(20):
        await place(provider, spec(pod_uid=f"job-{i:02d}", image="job:1", command=("t",),
                                   restart_policy="Never"))  # fmt: skip
    await trio.sleep(60)
    before = sum(1 for e in sim.journal if e.operation == "showLogs")
    start = trio.current_time()
    await provider.list()
    reads = sum(1 for e in sim.journal if e.operation == "showLogs") - before
    assert 1 <= reads <= 8
    assert trio.current_time() - start < 10  # not twenty paced log reads in a row


async def test_huge_marker_values_are_not_markers_and_crash_nothing(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 11: the Vast.ai marker with a huge code= or at= crashed the agent."""
    provider = make_provider()
    job = spec(image="job:1", command=("t",), restart_policy="Never")
    sim.script("job:1", Workload(run_seconds=None))
    await place(provider, job)
    rented = sim.instances()[0]
    nonce = translate.nonce_of(rented.args)  # a program can find it (ps): it changes nothing
    lines = (
        f"vk-trio-exit nonce={nonce} code={'9' * 5000} at=1",
        f"vk-trio-exit nonce={nonce} code=1 at={'9' * 5000}",
        f"vk-trio-exit nonce={nonce} code=256 at=1",
    )
    rented.workload = Workload(run_seconds=None, logs=lines)
    for _ in range(5):
        await trio.sleep(15)
        (listed,) = await provider.list()
        assert listed.state is InstanceState.RUNNING
    assert sum(1 for e in sim.journal if e.operation == "showLogs") >= 3  # they were read
