"""Every answer of the simulated RunPod validates against RunPod's published v2 document.

The simulator is only worth testing against if it says what RunPod says; these tests drive each
endpoint through many states and error paths and check every recorded response (status, content
type, body schema) with jsonschema against the document (its schema copy in tests/sim/specs/).
"""

from __future__ import annotations

import json

import trio
import trio.testing

from tests.sim.runpod.support import GPU, OpenApi, client_for, load_document, pod_body
from vk_trio.sim.runpod import Fault, RunPodSim, Timings
from vk_trio.sim.runpod.spec_subset import SPEC_SUBSET
from vk_trio.sim.runpod.validation import extract_subset


def test_embedded_request_schemas_match_the_published_document() -> None:
    assert extract_subset(load_document()) == SPEC_SUBSET


async def test_every_response_of_a_busy_session_validates_against_the_document(
    sim: RunPodSim, openapi: OpenApi, autojump_clock: trio.testing.MockClock
) -> None:
    sim.timings = Timings(provisioning=2, starting=3, ports_delay=2)
    async with client_for(sim) as client:
        created = await client.post("/v2/pods", json=pod_body(env={"A": "1"}))
        assert created.status_code == 201
        pod_id = created.json()["id"]
        for _ in range(10):  # PROVISIONING, STARTING, RUNNING without runtime, RUNNING
            await client.get(f"/v2/pods/{pod_id}")
            await client.get("/v2/pods")
            await trio.sleep(1)
        await client.patch(f"/v2/pods/{pod_id}", json={"name": "renamed", "locked": False})
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "restart"})
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "stop"})
        await client.get(f"/v2/pods/{pod_id}")
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "stop"})  # 409
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "start"})
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "terminate"})  # 204
        await client.get(f"/v2/pods/{pod_id}")  # 404
        await client.delete(f"/v2/pods/{pod_id}")  # 404
        cpu = await client.post(
            "/v2/pods", json=pod_body(gpu=None, cpu={"id": "cpu5c", "vcpuCount": 4}) | {}
        )
        assert cpu.status_code == 422  # gpu: null is not an object
        body = pod_body()
        del body["gpu"]
        body["cpu"] = {"id": "cpu5c", "vcpuCount": 4}
        assert (await client.post("/v2/pods", json=body)).status_code == 201
        await client.delete(
            f"/v2/pods/{(await client.post('/v2/pods', json=pod_body())).json()['id']}"
        )
        # error answers
        await client.post("/v2/pods", json=pod_body(supportPublicIp=True))  # 422
        await client.post("/v2/pods", json={"name": "x", "image": "y"})  # 400 neither
        await client.post("/v2/pods", json=pod_body(templateId="nope"))  # 404
        await client.post("/v2/pods", content=b"{not json")  # 400
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "explode"})  # 422
        await client.get("/v2/nothing-here")  # 404 unrouted
        await client.put("/v2/pods")  # 405
        sim.set_stock(GPU, "EU-RO-1", "SECURE", 0)
        await client.post("/v2/pods", json=pod_body(dataCenterIds=["EU-RO-1"]))  # 400 capacity
        # registries
        reg = await client.post(
            "/v2/registries", json={"name": "r", "username": "u", "password": "p"}
        )
        await client.post("/v2/registries", json={"name": "r", "username": "u", "password": "p"})
        await client.get("/v2/registries")
        await client.get(f"/v2/registries/{reg.json()['id']}")
        await client.get("/v2/registries/none")
        await client.delete(f"/v2/registries/{reg.json()['id']}")
        await client.post("/v2/registries", json={"name": "r"})  # 422
        # catalog
        await client.get("/v2/catalog/gpus")
        await client.get("/v2/catalog/gpus", params={"include": "AVAILABILITY", "product": "POD"})
        await client.get(
            "/v2/catalog/gpus",
            params={
                "include": "AVAILABILITY",
                "product": "POD",
                "count": "8",
                "cloud": "COMMUNITY",
            },
        )
        await client.get(
            "/v2/catalog/gpus",
            params={"include": "AVAILABILITY", "product": "POD", "countryCodes": "RO"},
        )
        await client.get("/v2/catalog/gpus", params={"include": "AVAILABILITY"})  # 400
        await client.get("/v2/catalog/gpus", params={"count": "2"})  # 400
        await client.get(
            f"/v2/catalog/gpus/{GPU}", params={"include": "AVAILABILITY", "product": "POD"}
        )
        await client.get("/v2/catalog/gpus/none")
        await client.get("/v2/catalog/datacenters", params={"include": "GPU_AVAILABILITY"})
        await client.get("/v2/catalog/datacenters", params={"regions": "EUROPE"})
        await client.get("/v2/catalog/datacenters/EU-RO-1")
        await client.get("/v2/catalog/datacenters/XX-1")
        # faults, limits and auth
        sim.add_fault(Fault(operation="listPods", status=503, retry_after=3))
        await client.get("/v2/pods")
        sim.set_rate_limits(minute=1)
        await trio.sleep(60)
        await client.get("/v2/pods")
        await client.get("/v2/pods")  # 429
    async with client_for(sim, key="") as anonymous:
        await anonymous.get("/v2/pods")  # 401
    async with client_for(sim, key="wrong") as stranger:
        await stranger.get("/v2/pods")  # 401
    async with client_for(sim, agent="Python-urllib/3.11") as urllib:
        await urllib.get("/v2/pods")  # 403

    statuses = {r.status for r in sim.requests}
    assert {200, 201, 204, 400, 401, 403, 404, 405, 409, 422, 429, 503} <= statuses
    for recorded in sim.requests:
        openapi.check_recorded(recorded)


async def test_log_stream_events_have_the_documented_shape(
    sim: RunPodSim, openapi: OpenApi, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod_id = (await client.post("/v2/pods", json=pod_body())).json()["id"]
        await trio.sleep(30)
        async with client.stream("GET", f"/v2/pods/{pod_id}/logs") as response:
            openapi.check_response(
                "GET", f"/v2/pods/{pod_id}/logs", 200, dict(response.headers), None
            )
            assert response.headers["cache-control"] == "no-cache"
            text = ""
            with trio.move_on_after(2):
                async for chunk in response.aiter_text():
                    text += chunk
    events = [block for block in text.split("\n\n") if block.startswith("id: ")]
    assert events
    for block in events:
        id_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert set(data) == {"ts", "source", "line"}
        assert id_line.removeprefix("id: ").startswith(data["ts"] + "/")
