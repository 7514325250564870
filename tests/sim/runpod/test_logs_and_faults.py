"""The SSE log stream (tail, since, Last-Event-ID, source, follow) and armed faults."""

from __future__ import annotations

import json

import httpx2
import pytest
import trio
import trio.testing

from tests.sim.runpod.support import client_for, pod_body
from vk_trio.latency import Latency
from vk_trio.sim.runpod import Fault, RunPodSim, Workload

LINES = tuple(f"line {i}" for i in range(10))


async def _events(
    client: httpx2.AsyncClient, pod_id: str, *, wait: float = 2.0, **kwargs: object
) -> list[tuple[str, dict[str, str]]]:
    """(id, data) of what the stream sends within ``wait`` seconds (it never ends itself)."""
    out: list[tuple[str, dict[str, str]]] = []
    path = f"/v2/pods/{pod_id}/logs"
    async with client.stream("GET", path, timeout=None, **kwargs) as response:  # type: ignore[arg-type]
        assert response.status_code == 200
        with trio.move_on_after(wait):
            async for sse in httpx2.EventSource(response):
                out.append((sse.id, json.loads(sse.data)))
    return out


async def _logging_pod(sim: RunPodSim, client: httpx2.AsyncClient) -> str:
    sim.script_workload("talker", Workload(lines=LINES))
    pod_id: str = (await client.post("/v2/pods", json=pod_body(image="talker"))).json()["id"]
    await trio.sleep(60)
    return pod_id


async def test_tail_defaults_to_100_and_counts_the_last_lines(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod_id = await _logging_pod(sim, client)
        everything = await _events(client, pod_id)
        last3 = await _events(client, pod_id, params={"tail": "3", "source": "container"})
        none = await _events(client, pod_id, params={"tail": "0"})
    assert len(everything) == len(sim.logs(pod_id))  # fewer than 100 so far
    assert {data["source"] for _, data in everything} == {"system", "container"}
    assert [data["line"] for _, data in last3] == ["line 7", "line 8", "line 9"]
    assert none == []


async def test_last_event_id_resumes_after_that_event_and_beats_tail(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod_id = await _logging_pod(sim, client)
        first = await _events(client, pod_id, params={"source": "container"})
        resumed = await _events(
            client,
            pod_id,
            params={"source": "container", "tail": "1"},
            headers={"last-event-id": first[4][0]},
        )
    assert [data["line"] for _, data in resumed] == list(LINES[5:])


async def test_since_resumes_from_a_timestamp(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod_id = await _logging_pod(sim, client)
        first = await _events(client, pod_id, params={"source": "container"})
        since = await _events(
            client, pod_id, params={"source": "container", "since": first[6][1]["ts"]}
        )
    assert [data["line"] for _, data in since] == list(LINES[6:])


async def test_the_stream_follows_new_lines_as_they_are_printed(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("slow", Workload(lines=LINES, line_interval=10))
    async with client_for(sim) as client:
        pod_id = (await client.post("/v2/pods", json=pod_body(image="slow"))).json()["id"]
        events = await _events(client, pod_id, wait=200, params={"source": "container"})
    assert [data["line"] for _, data in events] == list(LINES)


async def test_logs_of_an_unknown_pod_are_404(sim: RunPodSim) -> None:
    async with client_for(sim) as client:
        assert (await client.get("/v2/pods/nope/logs")).status_code == 404


async def test_rate_limit_budget_gives_429_with_retry_after_and_ratelimit_headers(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.set_rate_limits(minute=3)
    async with client_for(sim) as client:
        answers = [await client.get("/v2/pods") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[0].headers["ratelimit"].startswith('"minute";r=2;t=')
        assert answers[0].headers["ratelimit-policy"].startswith('"minute";q=3;w=60')
        limited = answers[3]
        assert limited.json()["detail"] == "rate limit exceeded for the minute window"
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 60
        await trio.sleep(retry_after)
        assert (await client.get("/v2/pods")).status_code == 200
    sim.set_rate_limits(minute=None)
    async with client_for(sim) as client:
        assert "ratelimit" not in (await client.get("/v2/pods")).headers


async def test_injected_5xx_hits_only_its_operation_and_count(sim: RunPodSim) -> None:
    sim.add_fault(Fault(operation="listPods", status=502, times=2))
    async with client_for(sim) as client:
        statuses = [(await client.get("/v2/pods")).status_code for _ in range(3)]
        assert (await client.get("/v2/registries")).status_code == 200
    assert statuses == [502, 502, 200]


async def test_slow_answers_take_their_delay(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="listPods", status=None, delay=45))
    async with client_for(sim) as client:
        start = trio.current_time()
        answer = await client.get("/v2/pods", timeout=None)
    assert answer.status_code == 200
    assert trio.current_time() - start == pytest.approx(45, abs=0.5)


async def test_a_create_can_answer_500_and_still_create_the_pod(sim: RunPodSim) -> None:
    sim.add_fault(Fault(operation="createPod", status=500, apply_first=True))
    async with client_for(sim) as client:
        answer = await client.post("/v2/pods", json=pod_body(name="ghost"))
        listed = (await client.get("/v2/pods")).json()["pods"]
    assert answer.status_code == 500
    assert [pod["name"] for pod in listed] == ["ghost"]
    assert len(sim.billing()) == 1


async def test_payment_required_and_forbidden_pools(sim: RunPodSim) -> None:
    async with client_for(sim) as client:
        sim.forbid("NVIDIA GeForce RTX 4090")
        assert (await client.post("/v2/pods", json=pod_body())).status_code == 403
        sim.set_payment_required()
        body = pod_body(gpu={"id": "NVIDIA L40S"})
        assert (await client.post("/v2/pods", json=body)).status_code == 402


async def test_each_operation_answers_after_its_response_time(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.latency = Latency({"createPod": (1.0, 3.0), "listPods": 0.3})
    async with client_for(sim) as client:
        start = trio.current_time()
        created = await client.post("/v2/pods", json=pod_body())
        took_create = trio.current_time() - start
        start = trio.current_time()
        await client.get("/v2/pods")
        took_list = trio.current_time() - start
    assert created.status_code == 201
    assert 1.0 <= took_create <= 3.0
    assert took_list == pytest.approx(0.3)
    create = sim.requests_for("createPod")[0]
    assert create.answered_at - create.received_at == pytest.approx(took_create)
