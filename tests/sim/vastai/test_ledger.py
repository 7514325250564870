"""The bill: storage from creation to destruction, the GPU only while running."""

from __future__ import annotations

import httpx2
import pytest
import trio
import trio.testing

from tests.sim.vastai.support import rent
from vk_trio.sim.vastai import VastSim, Workload

HOUR = 3600.0


async def test_storage_bills_from_creation_and_the_gpu_only_while_running(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("app:1", Workload(provision_seconds=0, create_seconds=0, load_seconds=HOUR))
    offer = sim.marketplace.all()[0]
    instance_id = await rent(http, offer.id, disk=100)
    await trio.sleep(2 * HOUR)
    charge = sim.ledger.charge(sim.instance(instance_id))  # type: ignore[arg-type]
    storage_per_hour = 100 * offer.storage_cost / 720
    assert charge.storage_usd == pytest.approx(2 * storage_per_hour)
    assert charge.gpu_usd == pytest.approx(offer.dph_base)  # loading is free
    assert sim.ledger.accruing_gpu() == [instance_id]


async def test_nothing_is_billed_after_destroy(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    instance_id = await rent(http, sim.marketplace.all()[0].id)
    await trio.sleep(HOUR)
    await http.delete(f"/api/v0/instances/{instance_id}/")
    cost = sim.ledger.cost(instance_id)
    await trio.sleep(10 * HOUR)
    assert sim.ledger.cost(instance_id) == cost
    assert sim.ledger.accruing() == []
    assert sim.ledger.accruing_gpu() == []
    assert sim.ledger.total() == cost


async def test_a_stopped_instance_still_bills_storage(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    instance_id = await rent(http, sim.marketplace.all()[0].id)
    await trio.sleep(HOUR)
    await http.put(f"/api/v0/instances/{instance_id}/", json={"state": "stopped"})
    before = sim.ledger.charges()[0]
    await trio.sleep(HOUR)
    after = sim.ledger.charges()[0]
    assert after.gpu_usd == before.gpu_usd
    assert after.storage_usd > before.storage_usd
    assert sim.ledger.accruing() == [instance_id]
    assert sim.ledger.accruing_gpu() == []


async def test_an_exited_container_stops_the_gpu_bill_but_not_storage(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script(
        "job:1", Workload(provision_seconds=0, create_seconds=0, load_seconds=0, run_seconds=HOUR)
    )
    instance_id = await rent(http, sim.marketplace.all()[0].id, image="job:1")
    await trio.sleep(3 * HOUR)
    charge = sim.ledger.charges()[0]
    assert charge.gpu_usd == pytest.approx(sim.marketplace.all()[0].dph_base)
    assert sim.ledger.accruing() == [instance_id]
