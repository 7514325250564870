"""Fault injection: an unexpected exception at any provider call, Kubernetes call or decoder
never takes the node down.

For each site, one victim pod gets an exception of a type nothing expects (ZeroDivisionError,
KeyError, AttributeError...) every time its work reaches that site. Meanwhile the agent stays
up, /healthz answers, bystander pods run to completion, each victim's failure is named in a
Warning Event (and, where the status can still be written, the condition
vk-trio.io/Reconciled=False); once the faults are lifted every victim converges and nothing
is left billing. The agent runs in this process on the real control plane, with the fake cloud.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
import trio

from tests.agent_harness import (
    admin_client,
    agent_config,
    eventually,
    fake_cloud,
    gpu_pod,
    pod_gone,
    running_agent,
)
from tests.controlplane.launcher import ControlPlane
from vk_trio.config import Config
from vk_trio.daemon import Agent
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, ObjectList, Pod
from vk_trio.kube.resources import CONFIGMAPS, EVENTS, PODS, SECRETS
from vk_trio.pacing import Backoff
from vk_trio.pods import lifecycle, provisioning, reconciler
from vk_trio.pods.admission import Admission
from vk_trio.providers.base import Instance, InstanceSpec, Offer, Provider, Requirements
from vk_trio.providers.fake import FakeProvider

pytestmark = pytest.mark.controlplane

T = TypeVar("T")
FAST = {
    "fake.vk-trio.io/boot-seconds": "0.2",
    "fake.vk-trio.io/start-seconds": "0.2",
    "fake.vk-trio.io/run-seconds": "1",
    "fake.vk-trio.io/exit-code": "0",
}
VICTIM = "test.vk-trio.io/victim"  # the pod's name, so that offers() can tell who asks
# site → the unexpected exception it raises
SITES: dict[str, type[Exception]] = {
    "provider.check": ZeroDivisionError,
    "provider.offers": KeyError,
    "provider.create": AttributeError,
    "provider.delete": TypeError,
    "kube.get-secret": RuntimeError,
    "kube.get-configmap": LookupError,
    "kube.patch-status": IndexError,
    "kube.delete-pod": NotImplementedError,
    "kube.create-event": UnicodeError,
    "decode.translate": OverflowError,
    "decode.env": RecursionError,
    "decode.pull-secrets": MemoryError,
    "decode.status": ArithmeticError,
    "decode.recovery": AssertionError,
    "decode.lifecycle": ValueError,
    "decode.admission": BufferError,
}
EXCEPTIONS = {**SITES, "provider.list": SystemError}  # the list fails for every pod at once
# where the status cannot be written while the fault lasts (or no record exists to hold the
# condition), so only the Event tells; the event site's victim never faults at all
NO_CONDITION = {"kube.patch-status", "decode.status", "decode.recovery", "kube.create-event"}
# sites reached only when the pod ends or is deleted
LATE = {"provider.delete", "kube.delete-pod", "decode.lifecycle"}


class Injector:
    """Raises ``SITES[site]`` while ``site`` is armed for the pod (by name or UID) at hand."""

    def __init__(self) -> None:
        self.armed: dict[str, set[str]] = {}
        self.hits: Counter[str] = Counter()
        self.exempt: set[int] = set()  # the test's own clients
        self.owners: dict[str, str] = {}  # instance id → pod name (the provider records it)

    def arm(self, site: str, *keys: str) -> None:
        self.armed.setdefault(site, set()).update(keys)

    def disarm(self) -> None:
        self.armed.clear()

    def check(self, site: str, *keys: str) -> None:
        if self.armed.get(site, set()) & set(keys):
            self.hits[site] += 1
            raise EXCEPTIONS[site](f"injected at {site}")


def victim(site: str) -> str:
    return "v-" + site.replace(".", "-")


class FaultyProvider:
    """The fake cloud with the provider call sites armed by pod."""

    def __init__(self, inner: FakeProvider, injector: Injector) -> None:
        self.inner = inner
        self.injector = injector
        self.name = inner.name
        self.owners = injector.owners

    def check(self, spec: InstanceSpec) -> None:
        self.injector.check("provider.check", spec.pod_name)
        self.inner.check(spec)

    async def offers(self, need: Requirements) -> list[Offer]:
        self.injector.check("provider.offers", need.annotations.get(VICTIM, ""))
        return await self.inner.offers(need)

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.injector.check("provider.create", spec.pod_name)
        instance = await self.inner.create(spec, offer)
        self.owners[instance.instance_id] = spec.pod_name
        return instance

    async def list(self) -> list[Instance]:
        self.injector.check("provider.list", "*")
        return await self.inner.list()

    async def delete(self, instance_id: str) -> None:
        self.injector.check("provider.delete", self.owners.get(instance_id, ""))
        await self.inner.delete(instance_id)

    def logs(self, instance_id: str, opts: Any) -> Any:
        return self.inner.logs(instance_id, opts)

    async def aclose(self) -> None:
        await self.inner.aclose()


def wrap(  # noqa: PLR0917
    target: Any,
    name: str,
    keys: Callable[..., tuple[str, ...]],
    site: str,
    injector: Injector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = getattr(target, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        injector.check(site, *keys(*args, **kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)


def wrap_async(  # noqa: PLR0917
    target: Any,
    name: str,
    keys: Callable[..., tuple[str, ...] | None],
    site: str,
    injector: Injector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = getattr(target, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        found = keys(*args, **kwargs)
        if found is not None:
            injector.check(site, *found)
        return await original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)


def install(injector: Injector, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arm-able wrappers at every Kubernetes call site and decoder the pod work goes through."""

    def kube(resource: Any, site: str, verb: str) -> Callable[..., tuple[str, ...] | None]:
        def keys(client: KubeClient, res: Any, *args: Any, **kwargs: Any) -> tuple[str, ...] | None:
            if id(client) in injector.exempt or res is not resource:
                return None
            if verb == "patch" and kwargs.get("subresource") != "status":
                return None
            if verb == "create":
                body = args[0]
                ref = body.get("involvedObject") if isinstance(body, dict) else None
                return (getattr(ref, "name", ""),)
            return (args[0],)

        return keys

    for resource, site, verb in [
        (SECRETS, "kube.get-secret", "get"),
        (CONFIGMAPS, "kube.get-configmap", "get"),
        (PODS, "kube.patch-status", "patch"),
        (PODS, "kube.delete-pod", "delete"),
        (EVENTS, "kube.create-event", "create"),
    ]:
        wrap_async(KubeClient, verb, kube(resource, site, verb), site, injector, monkeypatch)

    def pod_keys(pod: Pod, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        return (pod.metadata.name, pod.metadata.uid)

    wrap(provisioning, "to_instance_spec", pod_keys, "decode.translate", injector, monkeypatch)
    wrap_async(provisioning, "resolve_env", pod_keys, "decode.env", injector, monkeypatch)
    wrap(reconciler, "pod_status", pod_keys, "decode.status", injector, monkeypatch)
    wrap(reconciler, "record_from_pod", pod_keys, "decode.recovery", injector, monkeypatch)
    wrap(
        provisioning,
        "pull_credential",
        lambda image, secrets: tuple(s.metadata.name for s in secrets),
        "decode.pull-secrets",
        injector,
        monkeypatch,
    )
    wrap(
        lifecycle,
        "terminated_from",
        lambda instance, **kw: (injector.owners.get(instance.instance_id, ""),),
        "decode.lifecycle",
        injector,
        monkeypatch,
    )
    wrap(
        Admission,
        "admit",
        lambda self, pods: tuple(k for p in list(pods) for k in (p.metadata.name,)),
        "decode.admission",
        injector,
        monkeypatch,
    )


def manifest(name: str, node: str) -> dict[str, Any]:
    annotations = {**FAST, VICTIM: name}
    if name == victim("kube.delete-pod"):  # still running when deleted: a finished pod's
        annotations["fake.vk-trio.io/run-seconds"] = "3600"  # deletion needs no kubelet
    body = gpu_pod(name, node, annotations=annotations)
    container = body["spec"]["containers"][0]
    # the objects a victim reads are named like it, so that the same key arms both
    if name == victim("kube.get-secret"):
        container["env"] = [{"name": "S", "valueFrom": {"secretKeyRef": ref(name)}}]
    if name == victim("kube.get-configmap"):
        container["env"] = [{"name": "C", "valueFrom": {"configMapKeyRef": ref(name)}}]
    if name == victim("decode.pull-secrets"):
        body["spec"]["imagePullSecrets"] = [{"name": name}]
    return body


def ref(name: str) -> dict[str, str]:
    return {"name": name, "key": "k"}


async def healthz(agent: Agent) -> int:
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{agent.health_port}") as http:
        return (await http.get("/healthz")).status_code


async def faults_counted(agent: Agent, where: str) -> float:
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{agent.health_port}") as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("vk_trio_faults_total{") and f'where="{where}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no vk_trio_faults_total for {where}")


async def events_of(client: KubeClient, ns: str, name: str) -> list[Event]:
    listed: ObjectList[Event] = await client.list(
        EVENTS, namespace=ns, field_selector=f"involvedObject.name={name}"
    )
    return list(listed.items)


@dataclass
class FaultyNode:
    config: Config
    injector: Injector
    client: KubeClient  # the test's own: never faulted
    agent: Agent


@asynccontextmanager
async def faulty_node(
    cp: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FaultyNode]:
    """The agent on the fake cloud with every site wrapped, retrying faults quickly."""
    config = agent_config(cp, tmp_path)
    injector = Injector()
    install(injector, monkeypatch)

    async def make_provider(nursery: trio.Nursery) -> Provider:
        return FaultyProvider(fake_cloud(config), injector)

    async with (
        admin_client(cp) as client,
        running_agent(config, cp, make_provider=make_provider) as agent,
    ):
        injector.exempt.add(id(client))
        assert agent.reconciler is not None
        agent.reconciler.failures.retry = Backoff(initial=0.5, maximum=2.0, jitter=0.0)
        yield FaultyNode(config=config, injector=injector, client=client, agent=agent)


async def test_an_unexpected_exception_at_any_site_stays_that_pods_problem(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with faulty_node(controlplane, tmp_path, monkeypatch) as node:
        config, injector, client, agent = node.config, node.injector, node.client, node.agent
        for site in SITES:
            injector.arm(site, victim(site))
        for name, data in [
            (victim("kube.get-secret"), {"k": "dmFsdWU="}),
            (victim("decode.pull-secrets"), {".dockerconfigjson": "e30="}),
        ]:
            body = {"metadata": {"name": name}, "data": data}
            await client.create(SECRETS, body, namespace=namespace)
        configmap = {"metadata": {"name": victim("kube.get-configmap")}, "data": {"k": "v"}}
        await client.create(CONFIGMAPS, configmap, namespace=namespace)
        bystanders = [f"bystander-{i}" for i in range(3)]
        for name in [*bystanders, *(victim(site) for site in SITES)]:
            await client.create(PODS, manifest(name, config.node_name), namespace=namespace)

        async def early_sites_hit() -> bool:
            return all(injector.hits[s] >= 2 for s in SITES if s not in LATE)

        await eventually(early_sites_hit, within=60, what="every early site to fault twice")

        async def bystanders_done() -> bool:
            phases = [
                (await client.get(PODS, n, namespace=namespace)).status.phase for n in bystanders
            ]
            return all(p == "Succeeded" for p in phases)

        await eventually(bystanders_done, within=60, what="the bystanders to complete")
        assert await healthz(agent) == 200

        # the late sites: a finished pod's instance delete, the final pod delete
        await client.delete(PODS, victim("kube.delete-pod"), namespace=namespace)

        async def late_sites_hit() -> bool:
            return all(injector.hits[s] >= 1 for s in LATE)

        await eventually(
            late_sites_hit, within=60, what=f"the late sites to fault ({injector.hits})"
        )
        assert await faults_counted(agent, "reconcile") >= len(SITES) - 2
        assert await healthz(agent) == 200
        for site, kind in SITES.items():
            name = victim(site)
            if site in LATE or site == "kube.create-event":
                continue
            reasons = {e.reason: e.message for e in await events_of(client, namespace, name)}
            assert "ReconcileError" in reasons, (site, reasons)
            assert kind.__name__ in reasons["ReconcileError"], (site, reasons)
            if site not in NO_CONDITION:
                pod = await client.get(PODS, name, namespace=namespace)
                condition = {c.type: c for c in pod.status.conditions}.get("vk-trio.io/Reconciled")
                assert condition is not None and condition.status == "False", site
                assert kind.__name__ in condition.message, site

        injector.disarm()
        for site in SITES:  # any change to a pod wakes its worker at once
            if site != "kube.delete-pod":
                await client.patch(
                    PODS,
                    victim(site),
                    {"metadata": {"annotations": {"test.vk-trio.io/poke": "1"}}},
                    namespace=namespace,
                )

        async def converged() -> list[str] | None:
            pending = []
            for site in SITES:
                name = victim(site)
                if site == "kube.delete-pod":
                    if not await pod_gone(client, namespace, name):
                        pending.append(name)
                    continue
                pod = await client.get(PODS, name, namespace=namespace)
                if pod.status.phase != "Succeeded":
                    pending.append(f"{name}={pod.status.phase}")
            return None if pending else ["ok"]

        await eventually(converged, within=120, what="every victim to converge")
        cloud = fake_cloud(config)

        async def nothing_billed() -> bool:
            await trio.lowlevel.checkpoint()
            return not cloud.live_instances()

        await eventually(nothing_billed, within=60, what="no instance left billing")
        for site in SITES:
            if site in NO_CONDITION or site in LATE:
                continue
            pod = await client.get(PODS, victim(site), namespace=namespace)
            condition = {c.type: c for c in pod.status.conditions}.get("vk-trio.io/Reconciled")
            assert condition is None or condition.status == "True", site
        assert await healthz(agent) == 200


async def test_a_failing_list_keeps_the_agent_up_and_it_converges_once_it_works(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with faulty_node(controlplane, tmp_path, monkeypatch) as node:
        config, injector, client, agent = node.config, node.injector, node.client, node.agent
        injector.arm("provider.list", "*")
        await client.create(PODS, manifest("p", config.node_name), namespace=namespace)

        async def failing() -> bool:
            return injector.hits["provider.list"] >= 3

        await eventually(failing, within=60, what="the list to fail repeatedly")
        assert await healthz(agent) == 200 and agent.sync.faults >= 3
        assert await faults_counted(agent, "status_loop") >= 3
        injector.disarm()

        async def done() -> bool:
            pod = await client.get(PODS, "p", namespace=namespace)
            return pod.status.phase == "Succeeded"

        await eventually(done, within=60, what="the pod to complete once lists work")
