"""The simulator speaks Vast.ai's published document: requests it accepts and answers it gives.

Every exchange of a session that touches every operation, every error path and every quirk is
checked with jsonschema against the full document (``support.OpenApi``), and the simulator's own
copy of the document is checked against the file it was generated from.
"""

from __future__ import annotations

import json

import httpx2
import pytest
import trio
import trio.testing

from tests.sim.vastai.support import API_KEY, OpenApi, load_document, patched_document
from vk_trio.sim.vastai import RateLimits, VastSim, Workload
from vk_trio.sim.vastai.spec_subset import SPEC_SUBSET
from vk_trio.sim.vastai.validation import ERRATA, Validator, extract_subset

WRAPPER = '"$@"\ncode=$?\necho "marker code=$code"\nwhile :; do sleep 3600; done'


def test_the_simulators_copy_of_the_document_is_up_to_date() -> None:
    assert extract_subset(load_document()) == SPEC_SUBSET


def test_every_erratum_corrects_something_the_document_says() -> None:
    original = OpenApi(load_document())
    fixed = OpenApi(patched_document())
    assert original.document != fixed.document
    for erratum in ERRATA:
        assert erratum.why, erratum.where
    # the ones that matter most to a client, shown on the original document:
    create = original.operation("PUT", "/api/v0/asks/1/")
    env = create["requestBody"]["content"]["application/json"]["schema"]["properties"]["env"]
    assert env["type"] == "string"
    show = fixed.operation("GET", "/api/v0/instances/1/")
    schema = show["responses"]["200"]["content"]["application/json"]["schema"]
    assert not fixed._validate(schema, {"instances": None})
    assert original._validate(
        original.operation("GET", "/api/v0/instances/1/")["responses"]["200"]["content"][
            "application/json"
        ]["schema"],
        {"instances": None},
    )


async def test_every_answer_of_a_full_session_validates_against_the_document(
    autojump_clock: trio.testing.MockClock, openapi: OpenApi
) -> None:
    sim = VastSim(api_keys=[API_KEY], rate_limits=RateLimits(), read_lag_seconds=2.0)
    sim.script("app:1", Workload(run_seconds=None, logs=("ready",)))
    sim.script("job:1", Workload(run_seconds=20, logs=("a", "b"), exit_code=4))
    sim.script("bad:1", Workload(fault="oci_error"))
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve)
        auth = {"authorization": f"Bearer {API_KEY}"}
        async with httpx2.AsyncClient(base_url=sim.url, headers=auth, trust_env=False) as http:
            search = {"gpu_name": {"in": ["RTX 4090"]}, "order": [["dph_total", "asc"]]}
            offers = (await http.post("/api/v0/bundles/", json=search)).json()["offers"]
            await http.post("/api/v0/bundles", json={"num_gpus": {"eq": "1"}, "type": "on-demand"})
            await http.post("/api/v0/bundles/", json={"num_gpus": {"like": 1}})  # 400
            await trio.sleep(60)
            await http.post("/api/v0/bundles/", json={}, headers={"authorization": "Bearer nope"})
            ids = []
            plans: tuple[tuple[str, list[str]], ...] = (
                ("app:1", []),
                ("job:1", ["-c", WRAPPER, "x", "run"]),
                ("bad:1", []),
            )
            for offer, (image, args) in zip(offers, plans, strict=False):
                body = {
                    "image": image,
                    "disk": 20,
                    "label": f"label-{image}",
                    "runtype": "args",
                    "env": {"A": "1", "-p 8000:8000": "1"},
                    "cancel_unavail": True,
                }
                if args:
                    body |= {"onstart": "/bin/sh", "args": args}
                response = await http.put(f"/api/v0/asks/{offer['id']}/", json=body)
                ids.append(response.json()["new_contract"])
                await http.put(f"/api/v0/asks/{offer['id']}/", json=body)  # 429, too soon
                await trio.sleep(5)
            await http.get(f"/api/v0/instances/{ids[0]}/")  # null: just created
            await trio.sleep(60)
            for instance_id in ids:
                await http.get(f"/api/v0/instances/{instance_id}/")
                await http.get(f"/api/v0/instances/{instance_id}/")  # 429
                await trio.sleep(2)
            await http.get("/api/v1/instances/", params={"limit": "2"})
            await http.get("/api/v1/instances/")  # 429
            await trio.sleep(1)
            page = await http.get(
                "/api/v1/instances/",
                params={"limit": "2", "select_filters": json.dumps({"label": {"neq": "x"}})},
            )
            await trio.sleep(1)
            await http.get("/api/v1/instances/", params={"after_token": page.json()["next_token"]})
            await trio.sleep(1)
            await http.get("/api/v1/instances/", params={"after_token": "garbage!"})  # 400
            await trio.sleep(1)
            await http.get("/api/v1/instances/", params={"limit": "26"})  # 400: maximum 25
            logs = await http.put(f"/api/v0/instances/request_logs/{ids[1]}/", json={"tail": "5"})
            await http.get(logs.json()["result_url"])
            await http.put("/api/v0/instances/request_logs/999/", json={})  # 404
            await http.put(f"/api/v0/instances/{ids[0]}/", json={"label": "renamed"})
            await trio.sleep(1)
            await http.put(f"/api/v0/instances/{ids[0]}/", json={"state": "stopped"})
            await trio.sleep(1)
            await http.put("/api/v0/instances/999/", json={"state": "running"})  # 404
            for instance_id in [*ids, 999]:
                await http.delete(f"/api/v0/instances/{instance_id}/")
                await trio.sleep(3)
            await http.get(f"/api/v0/instances/{ids[0]}/")  # null: destroyed
            await http.get("/api/v1/instances/", headers={"authorization": ""})  # 401
            await http.put("/api/v0/asks/abc/", json={"image": "x"})  # 400: id not an integer
        nursery.cancel_scope.cancel()
    statuses = {(e.operation, e.status) for e in sim.journal}
    for expected in [
        ("searchOffers", 200),
        ("searchOffers", 400),
        ("searchOffers", 404),
        ("createInstance", 200),
        ("createInstance", 429),
        ("showInstance", 200),
        ("showInstance", 429),
        ("showInstances", 200),
        ("showInstances", 400),
        ("showInstances", 401),
        ("showLogs", 200),
        ("showLogs", 404),
        ("manageInstance", 200),
        ("manageInstance", 404),
        ("destroyInstance", 200),
        ("destroyInstance", 404),
        ("createInstance", 400),
    ]:
        assert expected in statuses, expected
    openapi.check(sim.journal, requests=False)
    openapi.check([e for e in sim.journal if e.status != 400])
    assert sim.violations == []
    assert len(sim.rejected) == 2  # limit 26 and id "abc"; the "like" operator is a filter 400


def test_the_simulators_own_checker_refuses_what_the_document_forbids() -> None:
    validator = Validator()
    assert validator.body_errors("createInstance", b'{"disk": 10}') == ["$.image: required"]
    assert validator.body_errors("createInstance", b'{"image": "x", "runtype": "shell"}')
    assert validator.body_errors("createInstance", b'{"image": "x", "price": 500}')
    assert validator.body_errors("manageInstance", json.dumps({"label": "x" * 1025}).encode())
    assert not validator.body_errors("createInstance", b'{"image": "x", "env": {"A": "1"}}')
    assert validator.parameter_errors("showInstances", path={}, query={"limit": ["30"]})
    assert validator.parameter_errors("showInstance", path={"id": "abc"}, query={})
    assert not validator.body_errors("showLogs", b"")
    assert validator.response_errors("showInstance", 418, "application/json", b"{}")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "x", "runtype": "bash"}, "runtype"),
        ({"image": "x", "disk": "ten"}, "disk"),
        ({"image": "x", "args": "run"}, "args"),
        ({"image": "x", "cancel_unavail": "yes"}, "cancel_unavail"),
        ({"disk": 10}, "image"),
    ],
)
async def test_a_create_the_document_forbids_is_refused_with_400_naming_the_field(
    sim: VastSim, http: httpx2.AsyncClient, body: dict[str, object], field: str
) -> None:
    offer = sim.marketplace.all()[0]
    response = await http.put(f"/api/v0/asks/{offer.id}/", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_args"
    assert field in response.json()["msg"]
    assert sim.instances() == []
    assert len(sim.rejected) == 1
