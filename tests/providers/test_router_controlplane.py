"""One node, both clouds, on the real control plane: the simulated RunPod and Vast.ai at once.

Where each pod goes and why (price, stock, an outage, a refused payment, the neutral and the
seeds' annotations), no double renting when a create's answer is lost (both clouds' ledgers),
the node-wide budget under a burst, a restart that adopts on both clouds and destroys orphans on
each, and nothing billed once everything is deleted.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import msgspec
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.agent_harness import (
    admin_client,
    delete_node,
    eventually,
    get_pod,
    pod_gone,
    running_agent,
)
from tests.controlplane.launcher import ControlPlane
from tests.providers.router_support import (
    ENV,
    Clouds,
    both_clouds,
    build_router,
    gpu_pod,
    two_cloud_agent,
    two_cloud_config,
)
from tests.providers.runpod.test_runpod_controlplane import events_of, until_phase
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.errors import NotFound
from vk_trio.httpserver import Response
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, Node, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, NODES, PODS
from vk_trio.providers import health
from vk_trio.providers.base import InstanceSpec, Requirements
from vk_trio.providers.health import CloudState
from vk_trio.providers.router import Router
from vk_trio.sim.runpod import Fault

pytestmark = pytest.mark.controlplane

PAYMENT_PROBE = 20.0  # a pod submitted at once is placed within it (~1 s unloaded)
A5000_COMMUNITY = {"vk-trio.io/gpu-types": "RTX A5000", "runpod.io/cloud-type": "COMMUNITY"}


@pytest.fixture
async def clouds(nursery: trio.Nursery) -> AsyncIterator[Clouds]:
    async with both_clouds(nursery) as found:
        yield found


async def submit(client: KubeClient, ns: str, name: str, node: str, notes: dict[str, str]) -> None:
    await client.create(PODS, gpu_pod(name, node, annotations=notes), namespace=ns)


async def running(client: KubeClient, ns: str, name: str, within: float = 60) -> Pod:
    return await eventually(until_phase(client, ns, name, "Running"), within=within, what=name)


def cloud_of(pod: Pod) -> str:
    return pod.metadata.annotations["vk-trio.io/cloud"]


async def node_events(client: KubeClient, node: str) -> list[Event]:
    listed: ObjectList[Event] = await client.list(
        EVENTS, namespace="default", field_selector=f"involvedObject.name={node}"
    )
    return listed.items


# --- where pods go ---------------------------------------------------------------------------


async def test_pods_go_to_the_cheaper_cloud_and_to_the_other_when_stock_runs_out(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, clouds: Clouds
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    node = config.node_name
    async with admin_client(controlplane) as client, two_cloud_agent(config, controlplane):
        registered: Node = await client.get(NODES, node)
        assert registered.metadata.labels["vk-trio.io/providers"] == "runpod.vastai"
        assert registered.metadata.labels["vk-trio.io/provider"] == "runpod"
        taints = {t.key: t.value for t in registered.spec.taints}
        assert taints["virtual-kubelet.io/provider"] == "runpod"  # seed 000's toleration fits
        # An RTX 4090: Vast.ai's cheapest verified one (Tokyo, $0.29/h + disk) beats RunPod's.
        pod = gpu_pod("on-vast", node, annotations={"vk-trio.io/gpu-types": "RTX 4090"})
        await client.create(PODS, pod, namespace=namespace)
        first = await running(client, namespace, "on-vast")
        assert cloud_of(first) == "vastai"
        assert first.status.container_statuses[0].container_id.startswith("vastai://")
        # An RTX A5000 in RunPod's community cloud ($0.16/h + disk) beats Vast.ai's ($0.20).
        pod = gpu_pod("on-runpod", node, annotations=A5000_COMMUNITY)
        await client.create(PODS, pod, namespace=namespace)
        second = await running(client, namespace, "on-runpod")
        assert cloud_of(second) == "runpod"
        assert second.metadata.annotations["runpod.io/gpu-type"] == "NVIDIA RTX A5000"
        # Vast.ai's RTX 4090s sell out: the next one is rented on RunPod.
        for offer in clouds.vast.marketplace.all():
            if offer.gpu_name == "RTX 4090":
                clouds.vast.marketplace.set_available(offer.id, 0)
        pod = gpu_pod("sold-out", node, annotations={"vk-trio.io/gpu-types": "RTX 4090"})
        await client.create(PODS, pod, namespace=namespace)
        third = await running(client, namespace, "sold-out")
        assert cloud_of(third) == "runpod"
        assert third.metadata.annotations["runpod.io/gpu-type"] == "NVIDIA GeForce RTX 4090"
        assert len(clouds.runpod.pods()) == 2 and len(clouds.vast.instances()) == 1
        for name in ("on-vast", "on-runpod", "sold-out"):
            await client.delete(PODS, name, namespace=namespace)
        await eventually(lambda: _nothing_billed(clouds), within=60, what="nothing billed")


async def test_an_outage_sends_pods_to_the_other_cloud_and_back_when_it_is_over(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, clouds: Clouds
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    node = config.node_name
    async with (
        admin_client(controlplane) as client,
        two_cloud_agent(config, controlplane) as agent,
    ):
        outage = clouds.runpod.add_fault(Fault(operation="*", status=503, times=None))
        await submit(client, namespace, "during", node, A5000_COMMUNITY)
        during = await running(client, namespace, "during")
        assert cloud_of(during) == "vastai"  # RunPod would be cheaper, but it answers 503

        async def warned() -> list[Event]:
            return [
                e
                for e in await node_events(client, node)
                if e.type == "Warning" and "runpod" in e.message
            ]

        (warning,) = await eventually(warned, what="a Warning on the Node naming RunPod")
        assert warning.reason == "ProviderUnavailable"
        conditions = {c.type: c for c in (await client.get(NODES, node)).status.conditions}
        assert conditions["vk-trio.io/CloudsReady"].status == "False"
        assert "runpod: cooling_down" in conditions["vk-trio.io/CloudsReady"].message
        assert await _cloud_states(agent) == {("runpod", "cooling_down"), ("vastai", "ok")}
        router = agent.router
        assert router is not None
        clouds.runpod.faults.rules.remove(outage)
        asked_again = functools.partial(_usable, router, "runpod")
        await eventually(asked_again, within=120, what="RunPod's cool-down to end")
        await submit(client, namespace, "after", node, A5000_COMMUNITY)
        after = await running(client, namespace, "after")
        assert cloud_of(after) == "runpod"  # cheaper again, and answering
        assert during.metadata.annotations["vk-trio.io/cloud"] == "vastai"  # it stays there


async def test_a_cloud_refusing_payment_is_skipped_until_a_probe_rents_there_again(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    clouds: Clouds,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RunPod's account is given a chance every PAYMENT_PROBE seconds (300 in production)
    monkeypatch.setattr(health, "PAYMENT_PROBE", PAYMENT_PROBE)
    config = two_cloud_config(controlplane, tmp_path, clouds)
    node = config.node_name
    async with (
        admin_client(controlplane) as client,
        two_cloud_agent(config, controlplane) as agent,
    ):
        router = agent.router
        assert router is not None
        clouds.runpod.set_payment_required(True)  # creates answer 402: the balance is gone
        await submit(client, namespace, "refused", node, A5000_COMMUNITY)

        async def refused() -> bool:
            await trio.lowlevel.checkpoint()
            return router.health.state("runpod") is CloudState.PAYMENT_REFUSED

        await eventually(refused, what="RunPod's refusal")
        # at once, well within the probe's wait: RunPod is not asked again
        await submit(client, namespace, "skipped", node, A5000_COMMUNITY)
        on_vast = [await running(client, namespace, n) for n in ("refused", "skipped")]
        assert [cloud_of(p) for p in on_vast] == ["vastai", "vastai"]  # RunPod is cheaper
        creates = clouds.runpod.requests_for("createPod")
        assert [r.status for r in creates] == [402]  # the second pod was not offered to RunPod
        ids = {p.status.container_statuses[0].container_id for p in on_vast}
        assert ids == {f"vastai://{i.id}" for i in clouds.vast.instances()}
        assert len(clouds.vast.ledger.accruing()) == 2
        assert clouds.runpod.pods(include_terminated=True) == [] and clouds.runpod.cost() == 0

        async def said(reason: str) -> list[Event]:
            return [
                e
                for e in await node_events(client, node)
                if e.reason == reason and "runpod" in e.message
            ]

        (warning,) = await eventually(
            functools.partial(said, "PaymentRequired"), what="a Warning on the Node naming RunPod"
        )
        assert (
            warning.type == "Warning" and "402" in warning.message and "skipped" in warning.message
        )
        refusal = ("False", "PaymentRequired", "runpod: payment_refused, vastai: ok")
        await eventually(
            functools.partial(_clouds_ready, client, node, refusal), what="CloudsReady False"
        )
        assert await _cloud_states(agent) == {("runpod", "payment_refused"), ("vastai", "ok")}
        clouds.runpod.set_payment_required(False)  # the account is topped up
        probe_due = functools.partial(_usable, router, "runpod")
        await eventually(probe_due, within=PAYMENT_PROBE + 60, what="RunPod's payment probe")
        await submit(client, namespace, "paid", node, A5000_COMMUNITY)
        paid = await running(client, namespace, "paid")
        assert cloud_of(paid) == "runpod"
        assert [r.status for r in clouds.runpod.requests_for("createPod")] == [402, 201]
        (recovered,) = await eventually(
            functools.partial(said, "CloudRecovered"), what="a Normal Event: RunPod rents again"
        )
        assert recovered.type == "Normal"
        ready = ("True", "CloudsAvailable", "runpod: ok, vastai: ok")
        await eventually(functools.partial(_clouds_ready, client, node, ready), what="it clears")
        assert await _cloud_states(agent) == {("runpod", "ok"), ("vastai", "ok")}
        assert [cloud_of(await get_pod(client, namespace, n)) for n in ("refused", "skipped")] == [
            "vastai",
            "vastai",
        ]  # they stay where they run
        await delete_all(client, namespace)
        await eventually(lambda: _nothing_billed(clouds), within=60, what="nothing billed")


async def _clouds_ready(client: KubeClient, node: str, wanted: tuple[str, str, str]) -> bool:
    """The Node's vk-trio.io/CloudsReady condition, as the API server has it, is
    (status, reason, message) ``wanted``."""
    conditions = {c.type: c for c in (await client.get(NODES, node)).status.conditions}
    found = conditions.get("vk-trio.io/CloudsReady")
    return found is not None and (found.status, found.reason, found.message) == wanted


async def _usable(router: Router, cloud: str) -> bool:
    """Placement may ask ``cloud`` again (its cool-down is over, or its payment probe is due)."""
    await trio.lowlevel.checkpoint()
    return router.health.usable(cloud)


async def _cloud_states(agent: Agent) -> set[tuple[str, str]]:
    """(cloud, state) pairs the agent's /metrics gauge vk_trio_cloud_state shows at 1."""
    states = (await scrape(agent))["vk_trio_cloud_state"]
    return {(s.labels["provider"], s.labels["state"]) for s in states if s.value == 1}


async def test_neutral_and_seed_annotations_restrict_where_a_pod_runs(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, clouds: Clouds
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    node = config.node_name
    wishes = {
        # Vast.ai would be cheaper, but the pod may only use RunPod, in one data center
        "only-runpod": {
            "vk-trio.io/gpu-types": "RTX 4090",
            "vk-trio.io/providers": "runpod",
            "runpod.io/datacenter-ids": "EU-RO-1",
        },
        # seed 003's region narrows Vast.ai's offers (Bavaria's RTX 3090, not Nevada's)
        "in-europe": {
            "vk-trio.io/gpu-types": "RTX 3090",
            "vk-trio.io/providers": "vastai",
            "vast.ai/region": "Europe",
        },
        # a neutral price cap that only Vast.ai's A5000 meets
        "capped": {"vk-trio.io/gpu-types": "RTX A5000", "vk-trio.io/max-price": "0.25"},
    }
    async with admin_client(controlplane) as client, two_cloud_agent(config, controlplane):
        for name, notes in wishes.items():
            await client.create(PODS, gpu_pod(name, node, annotations=notes), namespace=namespace)
        only = await running(client, namespace, "only-runpod")
        assert cloud_of(only) == "runpod"
        assert only.metadata.annotations["runpod.io/datacenter"] == "EU-RO-1"
        europe = await running(client, namespace, "in-europe")
        assert cloud_of(europe) == "vastai"
        assert europe.metadata.annotations["vastai.vk-trio.io/geolocation"] == "Bavaria, DE"
        capped = await running(client, namespace, "capped")
        assert cloud_of(capped) == "vastai"
        assert float(capped.metadata.annotations["vastai.vk-trio.io/price-per-hour"]) <= 0.25
        bad = gpu_pod("typo", node, annotations={"vk-trio.io/providers": "aws"})
        await client.create(PODS, bad, namespace=namespace)

        async def warned() -> bool:
            return any(
                e.reason == "InvalidAnnotation" and "aws" in e.message
                for e in await events_of(client, namespace, "typo")
            )

        await eventually(warned, what="an InvalidAnnotation Warning naming the value")
        assert (await get_pod(client, namespace, "typo")).status.phase == "Pending"


# --- no double renting -----------------------------------------------------------------------


async def test_a_lost_create_answer_on_runpod_never_also_rents_on_vast(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    clouds: Clouds,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    # RunPod creates the pod but its answer is a 504, and from then on it cannot even list
    # for a while: nobody can tell whether the create rented.
    lost = clouds.runpod.add_fault(Fault(operation="createPod", status=504, apply_first=True))
    pick = clouds.runpod.faults.pick

    def then_lists_fail(operation: str) -> Fault | None:
        rule = pick(operation)
        if rule is lost:
            clouds.runpod.add_fault(Fault(operation="listPods", status=503, times=20))
        return rule

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clouds.runpod.faults, "pick", then_lists_fail)
        await _rents_once(controlplane, namespace, config, clouds, cloud="runpod", caplog=caplog)


async def _rents_once(
    cp: ControlPlane,
    namespace: str,
    config: Config,
    clouds: Clouds,
    *,
    cloud: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pod "once" runs on ``cloud``, rented once there, nothing rented on the other."""
    notes = A5000_COMMUNITY if cloud == "runpod" else {"vk-trio.io/gpu-types": "RTX 4090"}
    async with admin_client(cp) as client, two_cloud_agent(config, cp):
        await submit(client, namespace, "once", config.node_name, notes)
        found = await running(client, namespace, "once", within=120)
        assert cloud_of(found) == cloud
        assert await asked_before_any_other(client, namespace, cloud, caplog)
    if cloud == "runpod":
        assert len(clouds.runpod.pods(include_terminated=True)) == 1
        assert clouds.vast.instances() == [] and clouds.vast.ledger.total() == 0
    else:
        assert len(clouds.vast.ledger.charges()) == 1  # destroyed with its pod, never two
        assert clouds.runpod.pods(include_terminated=True) == [] and clouds.runpod.cost() == 0


async def test_a_lost_create_answer_on_vast_never_also_rents_on_runpod(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    clouds: Clouds,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    vast = clouds.vast
    vast.fail_next("createInstance", status=504, text="gateway timeout", after=True)
    take = vast.take_fault

    def then_lists_fail(operation: str, *, after: bool = False) -> Response | None:
        answer = take(operation, after=after)
        if operation == "createInstance" and after and answer is not None:
            vast.fail_next("showInstances", status=503, text="upstream error", times=30)
        return answer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vast, "take_fault", then_lists_fail)
        await _rents_once(controlplane, namespace, config, clouds, cloud="vastai", caplog=caplog)


async def asked_before_any_other(
    client: KubeClient, namespace: str, cloud: str, caplog: pytest.LogCaptureFixture
) -> bool:
    """The router asked ``cloud`` whether the lost create had rented: it adopted what it found
    (said in the log), or the pod waited for the answer (said in an Event)."""
    adopted = any(
        record.name == "vk_trio.providers.router" and "had rented" in record.getMessage()
        for record in caplog.records
    )
    waited = any(
        e.type == "Warning" and cloud in e.message and "no other cloud is tried" in e.message
        for e in await events_of(client, namespace, "once")
    )
    return adopted or waited


# --- budget ----------------------------------------------------------------------------------


async def test_the_node_budget_holds_under_a_200_pod_burst_and_waiting_pods_start_later(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, clouds: Clouds
) -> None:
    budget = 2.0
    config = two_cloud_config(
        controlplane, tmp_path, clouds, max_node_price=str(budget), fast_interval=1.0
    )
    node = config.node_name
    peak = 0.0
    notes = {"vk-trio.io/gpu-types": "RTX A5000,RTX 3060,RTX 2000 Ada"}
    async with (
        admin_client(controlplane) as client,
        two_cloud_agent(config, controlplane) as agent,
    ):

        async def watch_spend() -> None:
            nonlocal peak
            while True:
                peak = max(peak, clouds.spend())
                await trio.sleep(0.05)

        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch_spend)
            async with trio.open_nursery() as burst:
                for i in range(200):
                    burst.start_soon(submit, client, namespace, f"burst-{i:03d}", node, notes)

            async def phases() -> dict[str, int]:
                listed: ObjectList[Pod] = await client.list(PODS, namespace=namespace)
                counts: dict[str, int] = {}
                for p in listed.items:
                    counts[p.status.phase] = counts.get(p.status.phase, 0) + 1
                return counts

            async def full() -> bool:
                counts = await phases()
                return counts.get("Running", 0) >= 5 and counts.get("Pending", 0) > 0

            await eventually(full, within=120, what="the budget filled")

            async def over_budget() -> list[Event]:
                listed: ObjectList[Event] = await client.list(
                    EVENTS, namespace=namespace, field_selector="reason=BudgetExceeded"
                )
                return listed.items

            waiting = (await eventually(over_budget, what="a BudgetExceeded Event"))[0]
            assert waiting.type == "Warning" and waiting.involved_object.kind == "Pod"
            assert f"${budget:.3f}/h" in waiting.message and "left" in waiting.message
            pod = await get_pod(client, namespace, waiting.involved_object.name)
            assert pod.status.phase == "Pending"
            metrics = await scrape(agent)
            family = metrics["vk_trio_spend_dollars_per_hour"]
            spend = {sample.labels["provider"]: sample.value for sample in family}
            assert set(spend) == {"runpod", "vastai"} and sum(spend.values()) <= budget + 1e-6
            (left,) = metrics["vk_trio_budget_left_dollars_per_hour"]
            assert left.value == pytest.approx(budget - sum(spend.values()), abs=1e-3)
            before = (await phases()).get("Running", 0)
            listed: ObjectList[Pod] = await client.list(PODS, namespace=namespace)
            for p in [p for p in listed.items if p.status.phase == "Running"][:3]:
                await client.delete(PODS, p.metadata.name, namespace=namespace)

            async def others_started() -> bool:
                return (await phases()).get("Running", 0) >= before  # 3 ended, 3 more run

            await eventually(others_started, within=120, what="waiting pods started")
            watcher.cancel_scope.cancel()
        assert peak <= budget + 1e-6, f"the ledgers billed ${peak:.4f}/h over ${budget}/h"
        await delete_all(client, namespace)
        await eventually(lambda: _nothing_billed(clouds), within=180, what="nothing billed")


# --- restart ---------------------------------------------------------------------------------


async def test_a_restart_adopts_on_both_clouds_and_destroys_orphans_on_each(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, clouds: Clouds
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    node = config.node_name
    async with admin_client(controlplane) as client:
        try:
            async with two_cloud_agent(config, controlplane, keep_node=True):
                for name, notes in (
                    ("rp", A5000_COMMUNITY),
                    ("va", {"vk-trio.io/gpu-types": "RTX 4090"}),
                ):
                    await submit(client, namespace, name, node, notes)
                rp, va = [await running(client, namespace, n) for n in ("rp", "va")]
                assert (cloud_of(rp), cloud_of(va)) == ("runpod", "vastai")
            # while the agent is down: an instance of this node on each cloud whose pod is gone
            async with trio.open_nursery() as nursery:
                router = await build_router(config, nursery)
                for cloud, gpu in (("runpod", "RTX A5000"), ("vastai", "RTX 4090")):
                    notes = {"vk-trio.io/providers": cloud, "vk-trio.io/gpu-types": gpu}
                    orphan = InstanceSpec(
                        node_name=node,
                        namespace=namespace,
                        pod_name="gone",
                        pod_uid=f"orphan-{cloud}",
                        image="example/service:1",
                        need=Requirements(annotations=notes),
                    )
                    offers = await router.offers(orphan.need)
                    await router.create(orphan, offers[0])
                await router.aclose()
                nursery.cancel_scope.cancel()
            assert clouds.rented() == (2, 2)
            async with two_cloud_agent(config, controlplane, keep_node=True):

                async def orphans_gone() -> bool:
                    await trio.lowlevel.checkpoint()
                    return len(clouds.runpod.pods()) == 1 and len(clouds.vast.instances()) == 1

                await eventually(orphans_gone, within=90, what="both orphans destroyed")
                for name, expected in (("rp", rp), ("va", va)):
                    now = await get_pod(client, namespace, name)
                    assert now.status.phase == "Running"
                    assert now.status.container_statuses[0].container_id == (
                        expected.status.container_statuses[0].container_id
                    )  # adopted, not rented again
                assert clouds.rented() == (2, 2)
                for name in ("rp", "va"):
                    await client.delete(PODS, name, namespace=namespace)
                for name in ("rp", "va"):
                    await eventually(functools.partial(pod_gone, client, namespace, name))
                await eventually(lambda: _nothing_billed(clouds), within=60, what="nothing billed")
        finally:
            await delete_node(client, node)


async def scrape(agent: Agent) -> dict[str, list[Sample]]:
    """The agent's /metrics, by family."""
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{agent.health_port}") as http:
        text = (await http.get("/metrics")).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


async def delete_all(client: KubeClient, namespace: str) -> None:
    """Delete every pod of the namespace, a few at a time, as kubectl delete --all does."""
    listed: ObjectList[Pod] = await client.list(PODS, namespace=namespace)
    limiter = trio.CapacityLimiter(20)

    async def one(name: str) -> None:
        async with limiter:
            with contextlib.suppress(NotFound):  # gone already
                await client.delete(PODS, name, namespace=namespace)

    async with trio.open_nursery() as nursery:
        for pod in listed.items:
            nursery.start_soon(one, pod.metadata.name)


async def _nothing_billed(clouds: Clouds) -> bool:
    await trio.lowlevel.checkpoint()
    return not clouds.billing()


async def test_instances_on_a_cloud_the_node_no_longer_fronts_are_reported_not_left_silent(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    clouds: Clouds,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = two_cloud_config(controlplane, tmp_path, clouds)
    node = config.node_name
    async with admin_client(controlplane) as client:
        try:
            async with two_cloud_agent(config, controlplane, keep_node=True):
                await submit(client, namespace, "va", node, {"vk-trio.io/gpu-types": "RTX 4090"})
                assert cloud_of(await running(client, namespace, "va")) == "vastai"
            # the node now fronts RunPod only; the Vast.ai key is still configured
            for name, value in ENV.items():
                monkeypatch.setenv(name, value)
            only_runpod = msgspec.structs.replace(config, provider="runpod")
            async with running_agent(only_runpod, controlplane, within=120, keep_node=True):

                async def reported() -> list[Event]:
                    return [
                        e
                        for e in await node_events(client, node)
                        if e.reason == "InstancesOnUnconfiguredCloud"
                    ]

                (event,) = await eventually(reported, within=60, what="the stray reported")
                (instance,) = clouds.vast.instances()
                assert event.type == "Warning" and str(instance.id) in event.message
                assert "vastai" in event.message and "keep billing" in event.message
                assert clouds.vast.instances() == [instance]  # reported, not touched
        finally:
            await delete_node(client, node)
