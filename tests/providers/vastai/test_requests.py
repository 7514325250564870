"""What our client puts on the wire: valid by Vast.ai's document, credentials only where due,
and paced so that Vast.ai's documented limits never have to refuse a single provider."""

from __future__ import annotations

import trio
import trio.testing

from tests.providers.vastai.conftest import MakeProvider, spec
from tests.sim.vastai.support import OpenApi
from vk_trio.providers.base import InstanceState, LogOptions, Requirements
from vk_trio.sim.vastai import VastSim, Workload

ANNOTATIONS = {
    "vast.ai/gpu-type": "RTX 4090",
    "vast.ai/gpu-fallbacks": "RTX 3090,RTX A5000",
    "vast.ai/price-max": "0.50",
    "vast.ai/region": "North America, Europe",
    "vast.ai/memory": "20GB",
    "vast.ai/disk": "40GB",
}


async def test_every_request_of_a_full_session_validates_against_the_document(
    sim: VastSim,
    make_provider: MakeProvider,
    openapi: OpenApi,
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim.script("job:1", Workload(run_seconds=30, logs=("training", "done"), exit_code=0))
    provider = make_provider()
    need = Requirements(annotations=ANNOTATIONS)
    offers = await provider.offers(need)
    assert offers
    server = spec(
        image="serve:1", command=("python", "serve.py"), ports=(8000,), annotations=ANNOTATIONS
    )
    job = spec(
        pod_uid="job-1",
        image="job:1",
        command=("python", "train.py"),
        restart_policy="Never",
        annotations=ANNOTATIONS,
    )
    await provider.create(server, offers[0])
    sim.fail_next("createInstance", status=502, text="bad gateway", after=True)
    created_job = await provider.create(job, offers[-1])  # answer lost: found by its label
    with trio.fail_after(600):
        while True:
            states = {i.instance_id: i.state for i in await provider.list()}
            if states.get(created_job.instance_id) is InstanceState.EXITED:
                break
            await trio.sleep(5)
    lines = [
        line.text
        async for line in provider.logs(created_job.instance_id, LogOptions(tail_lines=10))
    ]
    assert lines == ["training", "done"]
    for instance in await provider.list():
        await provider.delete(instance.instance_id)
    assert await provider.list() == []
    operations = {e.operation for e in sim.journal}
    assert operations >= {
        "searchOffers",
        "createInstance",
        "showInstances",
        "showLogs",
        "resultUrl",
        "destroyInstance",
    }
    openapi.check(sim.journal)
    assert len(sim.instances()) == 0


async def test_the_key_travels_only_as_a_bearer_header_and_never_to_a_result_url(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    sim.script("chatty:1", Workload(logs=("hello",)))
    offer = (await provider.offers(Requirements()))[0]
    instance = await provider.create(spec(image="chatty:1"), offer)
    await trio.sleep(60)
    assert [line.text async for line in provider.logs(instance.instance_id, LogOptions())] == [
        "hello"
    ]
    api = [e for e in sim.journal if e.operation != "resultUrl"]
    results = [e for e in sim.journal if e.operation == "resultUrl"]
    assert api and results
    assert {e.auth for e in api} == {"bearer"}
    assert {e.auth for e in results} == {""}
    assert all(e.user_agent.startswith("vk-trio") for e in sim.journal)


async def test_pacing_keeps_a_busy_provider_under_the_documented_limits(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    offers = await provider.offers(Requirements())
    pods = [spec(pod_uid=f"pod-{i}") for i in range(6)]

    async def busy(i: int) -> None:
        await provider.create(pods[i], offers[i % len(offers)])
        for _ in range(3):
            await provider.list()
            await provider.offers(Requirements())

    async with trio.open_nursery() as nursery:
        for i in range(len(pods)):
            nursery.start_soon(busy, i)
    assert sim.limiter.refused == {}
    assert len(sim.instances()) == len(pods)
