"""What our RunPod client sends (every request valid per the v2 document) and how it retries."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.providers.runpod.conftest import NODE, make_provider
from tests.sim.runpod.support import OpenApi
from vk_trio.providers.base import (
    InstanceSpec,
    InvalidSpec,
    LogOptions,
    NoCapacity,
    PaymentRequired,
    Port,
    ProviderAuthFailed,
    RateLimited,
    RegistryAuth,
    Requirements,
)
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.providers.runpod.client import USER_AGENT, RunPodClient
from vk_trio.sim.runpod import Fault, RunPodSim, Workload


def spec(uid: str = "uid-1", **kwargs: object) -> InstanceSpec:
    fields: dict[str, object] = {
        "node_name": NODE,
        "namespace": "default",
        "pod_name": f"pod-{uid}",
        "pod_uid": uid,
        "image": "example/app:1",
        "need": Requirements(gpu_count=1),
    }
    fields.update(kwargs)
    return InstanceSpec(**fields)  # type: ignore[arg-type]


async def rent(provider: RunPodProvider, s: InstanceSpec) -> str:
    """What placement does: the offers in order until one rents."""
    for offer in await provider.offers(s.need):
        try:
            return (await provider.create(s, offer)).instance_id
        except NoCapacity:
            continue
    raise NoCapacity("every offer failed")


def pods_named(sim: RunPodSim, s: InstanceSpec) -> list[str]:
    name = f"vk-trio.{s.node_name}.{s.key}"
    return [pod.id for pod in sim.pods() if pod.name == name]


async def test_every_request_the_client_sends_validates_against_the_document(
    sim: RunPodSim,
    provider: RunPodProvider,
    openapi: OpenApi,
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim.script_workload("job:1", Workload(lines=("working",), duration=20, exit_code=0))
    auth = RegistryAuth(server="registry.example", username="robot", password="pw")
    service = spec(
        "uid-svc",
        ports=(Port(number=8080), Port(number=22), Port(number=5432)),
        env={"A": "1"},
        registry_auth=auth,
        need=Requirements(
            gpu_count=1, disk_gb=42.5, annotations={"runpod.io/cloud-type": "COMMUNITY"}
        ),
    )
    job = spec(
        "uid-job", image="job:1", command=("python", "-c", "print('x')"), restart_policy="Never"
    )
    svc_id = await rent(provider, service)
    job_id = await rent(provider, job)
    await trio.sleep(60)
    assert {i.instance_id for i in await provider.list()} == {svc_id, job_id}
    _ = [line async for line in provider.logs(svc_id, LogOptions(tail_lines=5, since_seconds=600))]
    _ = [line async for line in provider.logs(job_id, LogOptions(follow=True))]
    await provider.delete(svc_id)
    await provider.delete(job_id)

    operations = {r.operation for r in sim.requests}
    assert {"listGpuTypes", "createPod", "listPods", "getPodLogs", "deletePod",
            "listRegistries", "createRegistry"} <= operations  # fmt: skip
    for recorded in sim.requests:
        assert recorded.headers["user-agent"] == USER_AGENT
        assert recorded.headers["authorization"].startswith("Bearer ")
        openapi.check_request(recorded)
    created = sim.requests_for("createPod")[0].body
    assert created["ports"] == ["8080/http", "22/tcp", "5432/tcp"]
    assert created["disk"] == 43
    assert created["cloud"] == "COMMUNITY"
    assert created["registry"] == next(iter(sim.registries))


async def test_a_429_storm_still_rents_exactly_one_instance_per_pod(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.set_rate_limits(minute=4)
    specs = [spec(f"uid-{i}") for i in range(6)]

    async def place(s: InstanceSpec) -> None:
        while True:  # what the reconciler does: RateLimited means "later"
            try:
                await rent(provider, s)
                return
            except RateLimited as exc:
                await trio.sleep(exc.retry_after or 1)

    async with trio.open_nursery() as nursery:
        for s in specs:
            nursery.start_soon(place, s)
    assert any(r.status == 429 for r in sim.requests)
    assert all(len(pods_named(sim, s)) == 1 for s in specs)


async def test_a_create_that_answers_500_after_creating_is_not_repeated(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="createPod", status=500, apply_first=True))
    s = spec()
    instance_id = await rent(provider, s)
    assert pods_named(sim, s) == [instance_id]
    assert len(sim.requests_for("createPod")) == 1


async def test_a_create_that_times_out_after_creating_is_not_repeated(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="createPod", status=None, delay=300, apply_first=True))
    s = spec()
    instance_id = await rent(provider, s)
    assert pods_named(sim, s) == [instance_id]


async def test_a_create_refused_with_5xx_is_retried_until_it_works(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="createPod", status=503, times=2))
    s = spec()
    instance_id = await rent(provider, s)
    assert pods_named(sim, s) == [instance_id]
    assert [r.status for r in sim.requests_for("createPod")] == [503, 503, 201]


async def test_reads_are_retried_through_5xx(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="listPods", status=502, times=3))
    assert await provider.list() == []


async def test_persistent_rate_limiting_becomes_rate_limited_with_retry_after(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="listPods", status=429, retry_after=7, times=None))
    with pytest.raises(RateLimited) as caught:
        await provider.list()
    assert caught.value.retry_after == 7
    assert len(sim.requests_for("listPods")) == 5


async def test_no_capacity_is_a_400_and_becomes_no_capacity(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    s = spec()
    offer = (await provider.offers(s.need))[0]
    sim.clear_stock()
    with pytest.raises(NoCapacity, match="no longer any instances available"):
        await provider.create(s, offer)
    assert await provider.offers(s.need) == []


async def test_a_forbidden_pool_is_skipped_as_no_capacity(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    s = spec()
    offer = (await provider.offers(s.need))[0]
    sim.forbid(offer.gpu_type)
    with pytest.raises(NoCapacity, match="denied access"):
        await provider.create(s, offer)


async def test_insufficient_balance_stops_with_payment_required(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    s = spec()
    offer = (await provider.offers(s.need))[0]
    sim.set_payment_required()
    with pytest.raises(PaymentRequired):
        await provider.create(s, offer)


async def test_a_422_is_our_bug_and_never_retried(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    s = spec()
    offer = (await provider.offers(s.need))[0]
    sim.add_fault(Fault(operation="createPod", status=422, times=None))
    with pytest.raises(InvalidSpec, match="vk-trio bug"):
        await provider.create(s, offer)
    assert len(sim.requests_for("createPod")) == 1


async def test_a_wrong_api_key_is_provider_auth_failed(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    provider = RunPodProvider(NODE, client=RunPodClient(api_key="wrong", base_url=sim.url))
    try:
        with pytest.raises(ProviderAuthFailed):
            await provider.list()
    finally:
        await provider.aclose()


async def test_registry_credentials_are_made_once_and_reused(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    auth = RegistryAuth(server="ghcr.io", username="robot", password="pw")
    sim.script_workload("ghcr.io/me/private", Workload(registry_username="robot"))
    for uid in ("uid-a", "uid-b"):
        await rent(provider, spec(uid, image="ghcr.io/me/private:1", registry_auth=auth))
    fresh = make_provider(sim)  # a restarted agent finds the credential by name
    await rent(fresh, spec("uid-c", image="ghcr.io/me/private:1", registry_auth=auth))
    await fresh.aclose()
    assert len(sim.registries) == 1
    assert "pw" not in repr(spec(registry_auth=auth))
    await trio.sleep(60)
    assert {pod.phase.value for pod in sim.pods()} == {"RUNNING"}


async def test_the_registry_annotation_is_passed_through(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    registry = sim.account.create_registry({"name": "mine", "username": "u", "password": "p"})
    annotations = {"runpod.io/container-registry-auth-id": registry.id}
    await rent(provider, spec(need=Requirements(gpu_count=1, annotations=annotations)))
    assert sim.requests_for("createPod")[0].body["registry"] == registry.id


async def test_a_duplicate_from_a_create_delayed_before_processing_is_terminated(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_fault(Fault(operation="createPod", status=None, delay=120))  # processed late
    s = spec()
    first = await rent(provider, s)
    await trio.sleep(120)  # the delayed create lands too: two pods with one key
    assert len(pods_named(sim, s)) == 2
    assert [i.instance_id for i in await provider.list()] == [first]
    assert pods_named(sim, s) == [first]
    assert sim.billing() == [first]
