"""The quirks clients measured on Vast.ai, reproduced: a client must survive each of them."""

from __future__ import annotations

import json

import httpx2
import trio
import trio.testing

from tests.sim.vastai.support import rent, show
from vk_trio.sim.vastai import VastSim


async def test_an_offer_withdrawn_between_search_and_buy_answers_404_no_such_ask(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    offer = sim.marketplace.all()[0]
    sim.marketplace.remove(offer.id)
    response = await http.put(
        f"/api/v0/asks/{offer.id}/", json={"image": "x", "cancel_unavail": True}
    )
    assert response.status_code == 404
    assert "no_such_ask" in response.json()["msg"]
    assert sim.instances() == []


async def test_an_offer_rented_by_someone_else_answers_410_with_cancel_unavail(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    offer = sim.marketplace.all()[0]
    sim.marketplace.set_available(offer.id, 0)
    response = await http.put(
        f"/api/v0/asks/{offer.id}/", json={"image": "x", "cancel_unavail": True}
    )
    assert response.status_code == 410
    assert response.json()["error"] == "no_such_ask"
    assert sim.instances() == []


async def test_a_create_without_cancel_unavail_rents_a_stopped_storage_billed_instance(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    offer = sim.marketplace.all()[0]
    sim.marketplace.set_available(offer.id, 0)
    response = await http.put(
        f"/api/v0/asks/{offer.id}/", json={"image": "x", "cancel_unavail": False}
    )
    assert response.status_code == 200
    instance_id = response.json()["new_contract"]
    await trio.sleep(3600)
    found = await show(http, instance_id)
    assert found is not None
    assert found["actual_status"] == "stopped"
    charge = next(c for c in sim.ledger.charges() if c.instance_id == instance_id)
    assert charge.storage_usd > 0
    assert charge.gpu_usd == 0
    assert sim.ledger.accruing() == [instance_id]


async def test_an_error_may_still_carry_the_new_contract_of_a_stopped_instance(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    sim.error_with_contract_next()
    offer = sim.marketplace.all()[0]
    response = await http.put(
        f"/api/v0/asks/{offer.id}/", json={"image": "x", "cancel_unavail": True}
    )
    assert response.status_code == 400
    assert response.json()["success"] is False
    instance = sim.instance(response.json()["new_contract"])
    assert instance is not None
    assert instance.intended == "stopped"


async def test_reads_say_instances_null_right_after_create_and_after_destroy(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.read_lag_seconds = 3.0
    instance_id = await rent(http, sim.marketplace.all()[0].id)
    assert await show(http, instance_id) is None
    await trio.sleep(3)
    assert await show(http, instance_id) is not None
    assert (await http.delete(f"/api/v0/instances/{instance_id}/")).json() == {"success": True}
    assert await show(http, instance_id) is None
    again = await http.delete(f"/api/v0/instances/{instance_id}/")
    assert again.status_code == 404
    assert again.json()["error"] == "no_such_instance"


async def test_the_v1_list_filters_by_label_and_pages_with_next_token(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    offer = sim.marketplace.all()[0]
    sim.marketplace.set_available(offer.id, 30)
    mine = [await rent(http, offer.id, label="vk:node-a") for _ in range(7)]
    for _ in range(3):
        await rent(http, offer.id, label="someone else")
    await rent(http, offer.id)
    filters = json.dumps({"label": {"eq": "vk:node-a"}})
    found: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"limit": "3", "select_filters": filters} | (
            {"after_token": token} if token else {}
        )
        page = (await http.get("/api/v1/instances/", params=params)).json()
        found += [row["id"] for row in page["instances"]]
        assert page["total_instances"] == 7
        assert page["label_counts"] == {"vk:node-a": 7}
        pages += 1
        token = page["next_token"]
        if token is None:
            break
    assert (found, pages) == (mine, 3)
    everything = (await http.get("/api/v1/instances/")).json()
    assert everything["total_instances"] == 11
    assert everything["instances_found"] == 11
    assert everything["label_counts"] == {"vk:node-a": 7, "someone else": 3, "": 1}


async def test_the_v1_list_refuses_computed_columns_and_bad_tokens(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    computed = await http.get(
        "/api/v1/instances/", params={"select_filters": '{"dph_total": {"lte": 1}}'}
    )
    assert computed.status_code == 400
    assert "dph_total is not a valid search key" in computed.json()["msg"]
    token = await http.get("/api/v1/instances/", params={"after_token": "not-a-token"})
    assert (token.status_code, token.json()["error"]) == (400, "invalid_token")


async def test_another_accounts_instances_are_invisible(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    foreign = sim.rent_foreign(owner="someone-else", label="vk:node-a")
    assert await show(http, foreign) is None
    assert (await http.get("/api/v1/instances/")).json()["instances"] == []
    assert (await http.delete(f"/api/v0/instances/{foreign}/")).status_code == 404
    assert sim.instance(foreign) is not None


async def test_the_legacy_api_key_query_parameter_is_accepted(sim: VastSim) -> None:
    async with httpx2.AsyncClient(base_url=sim.url, trust_env=False) as legacy:
        response = await legacy.get("/api/v1/instances/", params={"api_key": sim.api_keys[0]})
        anonymous = await legacy.get("/api/v1/instances/")
    assert response.status_code == 200
    assert anonymous.status_code == 401
    assert [e.auth for e in sim.journal] == ["query", ""]


async def test_invented_endpoints_are_refused_and_journalled(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    """What the seed's agent called: POST /asks/buy/, GET /bundles with flat parameters."""
    bought = await http.post("/api/v0/asks/buy/", json={"ask_id": 1, "image": "x"})
    flat = await http.get("/api/v0/bundles", params={"gpu_name": "RTX_3060", "dph_lte": "0.5"})
    unknown = await http.get("/api/v0/no/such/thing/")
    assert [bought.status_code, flat.status_code, unknown.status_code] == [405, 405, 404]
    assert [(e.operation, e.path) for e in sim.journal] == [
        ("", "/api/v0/asks/buy/"),
        ("", "/api/v0/bundles"),
        ("", "/api/v0/no/such/thing/"),
    ]


async def test_scripted_faults_answer_the_next_calls(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    sim.fail_next("showInstances", status=503, text="upstream connect error", times=2)
    assert (await http.get("/api/v1/instances/")).status_code == 503
    assert (await http.get("/api/v1/instances/")).status_code == 503
    assert (await http.get("/api/v1/instances/")).status_code == 200


async def test_a_lost_answer_leaves_what_the_call_did(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    sim.fail_next("createInstance", status=504, text="gateway timeout", after=True)
    offer = sim.marketplace.all()[0]
    response = await http.put(
        f"/api/v0/asks/{offer.id}/", json={"image": "x", "cancel_unavail": True}
    )
    assert response.status_code == 504
    assert len(sim.instances()) == 1
