"""Requests that break the v2 contract are refused the way the research says RunPod refuses them."""

from __future__ import annotations

from typing import Any

import jsonschema
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim.runpod.support import GPU, OpenApi, client_for, load_document, pod_body
from vk_trio.sim.runpod import RunPodSim
from vk_trio.sim.runpod.validation import Validator


async def test_unknown_body_key_is_a_422_naming_the_field(sim: RunPodSim) -> None:
    async with client_for(sim) as client:
        answer = await client.post("/v2/pods", json=pod_body(supportPublicIp=True))
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["detail"] == "Request validation failed."
    assert problem["errors"] == ["$: additional properties 'supportPublicIp' not allowed"]
    assert answer.headers["content-type"] == "application/problem+json"


async def test_unknown_nested_key_and_bad_enum_are_named_with_their_path(sim: RunPodSim) -> None:
    async with client_for(sim) as client:
        nested = await client.post("/v2/pods", json=pod_body(gpu={"id": GPU, "minRamPerGpu": 8}))
        enum = await client.post("/v2/pods", json=pod_body(cloud="ALL"))
        missing = await client.post("/v2/pods", json={"gpu": {"id": GPU}})
    assert nested.json()["errors"] == ["$.gpu: additional properties 'minRamPerGpu' not allowed"]
    assert enum.json()["errors"] == ["$.cloud: value must be one of 'SECURE', 'COMMUNITY'"]
    assert "$: missing properties 'name'" in missing.json()["errors"]


async def test_gpu_and_cpu_both_or_neither_is_a_400(sim: RunPodSim) -> None:
    both = pod_body(cpu={"id": "cpu5c", "vcpuCount": 2})
    neither = pod_body()
    del neither["gpu"]
    async with client_for(sim) as client:
        for body in (both, neither):
            answer = await client.post("/v2/pods", json=body)
            assert answer.status_code == 400
            assert answer.json()["detail"] == "exactly one of gpu or cpu must be set"
    assert sim.pods() == []


async def test_cuda_constraints_are_mutually_exclusive(sim: RunPodSim) -> None:
    gpu = {"id": GPU, "allowedCudaVersions": ["12.8"], "minCudaVersion": "12.1"}
    async with client_for(sim) as client:
        answer = await client.post("/v2/pods", json=pod_body(gpu=gpu))
    assert answer.status_code == 400


async def test_action_not_valid_for_the_status_is_a_409(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod = (await client.post("/v2/pods", json=pod_body())).json()
        assert pod["status"] == "PROVISIONING"
        assert pod["actions"] == ["stop", "terminate"]
        refused = await client.post(f"/v2/pods/{pod['id']}/action", json={"action": "restart"})
        assert refused.status_code == 409
        assert (await client.post(f"/v2/pods/{pod['id']}/action", json={"action": "stop"})).json()[
            "actions"
        ] == ["start", "terminate"]
        again = await client.post(f"/v2/pods/{pod['id']}/action", json={"action": "stop"})
        assert again.status_code == 409


async def test_missing_or_wrong_bearer_is_a_401_problem(sim: RunPodSim) -> None:
    async with client_for(sim, key="") as anonymous, client_for(sim, key="nope") as stranger:
        missing = await anonymous.get("/v2/pods")
        wrong = await stranger.get("/v2/pods")
    assert (missing.status_code, missing.json()["detail"]) == (401, "missing bearer token")
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid bearer token")


async def test_urllib_default_user_agent_gets_cloudflares_403(sim: RunPodSim) -> None:
    async with client_for(sim, agent="Python-urllib/3.11") as client:
        assert (await client.get("/v2/pods")).status_code == 403


async def test_availability_needs_product_and_filters_need_availability(sim: RunPodSim) -> None:
    async with client_for(sim) as client:
        no_product = await client.get("/v2/catalog/gpus", params={"include": "AVAILABILITY"})
        no_include = await client.get("/v2/catalog/gpus", params={"product": "POD"})
        bad_tail = await client.get("/v2/pods/x/logs", params={"tail": "9999"})
        bare = await client.get("/v2/catalog/gpus")
    assert no_product.status_code == 400
    assert no_include.status_code == 400
    assert bad_tail.status_code == 422
    assert bad_tail.json()["errors"] == ["query.tail: must be <= 5000 but found 9999"]
    assert all("availability" not in gpu for gpu in bare.json()["gpus"])  # a bare price list


async def test_unknown_query_parameters_are_ignored(sim: RunPodSim) -> None:
    async with client_for(sim) as client:
        answer = await client.get("/v2/pods", params={"desiredStatus": "RUNNING"})
    assert answer.status_code == 200


# --- the simulator's validator agrees with jsonschema on the published document ---------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["name", "image", "gpu", "cpu", "env", "ports", "disk", "cloud", "mounts", "args",
     "dataCenterIds", "templateId", "registry", "startSsh", "bogus"]
)  # fmt: skip
_gpu = st.fixed_dictionaries(
    {"id": st.text(max_size=5)},
    optional={
        "count": st.integers(-1, 3),
        "minCudaVersion": st.sampled_from(["12.1", "12", "x"]),
        "extra": st.booleans(),
    },
)
_bodies = st.dictionaries(_keys, _json | _gpu, max_size=6)


@settings(max_examples=300, deadline=None)
@given(body=_bodies)
def test_simulator_validator_agrees_with_jsonschema_on_create_bodies(body: dict[str, Any]) -> None:
    openapi = OpenApi(load_document())
    schema = openapi.operation("POST", "/v2/pods")[0]["requestBody"]["content"]["application/json"]
    root = {**schema["schema"], "components": openapi.document["components"]}
    expected_valid = jsonschema.Draft202012Validator(root).is_valid(body)
    assert (Validator().body_errors("createPod", body) == []) == expected_valid
