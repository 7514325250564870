"""The agent in-process as the chart's ServiceAccount, and the capabilities each RBAC rule serves.

``install_identity`` applies what the chart renders for a release (ServiceAccount, ClusterRole,
Roles, bindings; the Deployment cannot run without a kubelet and is left out), mints a token
with ``kubectl create token`` and lays out a service-account directory as a pod would see it
(token, ca.crt, namespace). ``agent_as`` runs the agent with the fake provider on those
in-cluster credentials: vk_trio.kube.auth's own in-cluster code path, pointed at that directory
and at KUBERNETES_SERVICE_HOST/PORT of the test control plane.

A ``Capability`` is something a user sees the agent do (a Node turns Ready, a Secret's value
reaches the instance...). Its ``check`` raises ``CapabilityMissing`` when the agent does not do
it within ``within`` seconds; a failing precondition raises AssertionError instead, so a test
that expects a capability to be missing cannot pass for the wrong reason.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import trio

from tests.agent_harness import admin_client, agent_config, delete_node, gpu_pod
from tests.controlplane.launcher import ControlPlane
from tests.packaging import chart
from vk_trio import daemon
from vk_trio.errors import NotFound
from vk_trio.kube.auth import Credentials, resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, Lease, Node, ObjectList, Pod
from vk_trio.kube.resources import CONFIGMAPS, EVENTS, JOBS, LEASES, NODES, PODS, SECRETS
from vk_trio.providers.base import Instance, InstanceSpec, Offer
from vk_trio.providers.fake import FakeProvider

T = TypeVar("T")

NODE_LEASE_NAMESPACE = "kube-node-lease"
FAST = {"fake.vk-trio.io/boot-seconds": "0.3", "fake.vk-trio.io/start-seconds": "0.3"}
SETUP_WITHIN = 20.0  # preconditions: generous, they must not fail
POLL = 0.2
TOKEN_DURATION = "1h"


class CapabilityMissing(Exception):
    """The agent did not do what the capability promises (in time)."""


# --- identity: the chart's RBAC, a token, an in-cluster service-account directory ------------


@dataclass(frozen=True)
class Identity:
    """The chart's ServiceAccount of one release, as a pod of that release would see it."""

    release: str
    namespace: str
    node: str
    service_account: str
    root: Path  # token, ca.crt, namespace
    env: Mapping[str, str]  # KUBERNETES_SERVICE_HOST/PORT
    docs: tuple[chart.Doc, ...]  # what was applied
    node_identity: str = "bootstrap"  # the chart's nodeIdentity: how the agent runs

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def release_values(node: str, *, offload: bool = True, **values: object) -> dict[str, object]:
    """The chart's defaults, except the node, the fake cloud (no Secret needed), burst on (its
    grants are the superset; tests/packaging/test_rbac.py also checks them off) and ``values``."""
    return {"nodeName": node, "provider": "fake", "offload": offload, **values}


def rbac_docs(docs: Sequence[chart.Doc]) -> list[chart.Doc]:
    """Everything but the workloads: ServiceAccount, roles, bindings (and a Secret if any)."""
    return [d for d in docs if d["kind"] not in ("Deployment", "PodDisruptionBudget")]


def kubectl_apply(cp: ControlPlane, docs: Sequence[chart.Doc]) -> None:
    cp.kubectl("apply", "-f", "-", stdin=chart.dump(docs))


def kubectl_delete(cp: ControlPlane, docs: Sequence[chart.Doc]) -> None:
    cp.kubectl(
        "delete",
        "-f",
        "-",
        "--ignore-not-found",
        "--wait=false",
        stdin=chart.dump(docs),
        check=False,
    )


def install_identity(
    cp: ControlPlane,
    root: Path,
    *,
    namespace: str,
    node: str,
    change: Callable[[list[chart.Doc]], list[chart.Doc]] = list,
    node_identity: str = "bootstrap",
) -> Identity:
    """Render the chart for ``node`` into ``namespace`` (with ``nodeIdentity``), apply its RBAC
    (after ``change``), mint a token for its ServiceAccount, and write the pod's
    service-account directory."""
    release = f"rbac-{secrets.token_hex(3)}"
    values = release_values(node, nodeIdentity=node_identity)
    rendered = chart.render(release=release, namespace=namespace, values=values)
    docs = change(rbac_docs(rendered))
    kubectl_apply(cp, docs)
    account = chart.the(rendered, "ServiceAccount")["metadata"]["name"]
    token = cp.kubectl(
        "create", "token", account, f"--namespace={namespace}", f"--duration={TOKEN_DURATION}"
    ).stdout.strip()
    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(token)
    (root / "ca.crt").write_bytes(cp.ca_pem.read_bytes())
    (root / "namespace").write_text(namespace)
    host, _, port = cp.server.removeprefix("https://").rpartition(":")
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    return Identity(release, namespace, node, account, root, env, tuple(docs), node_identity)


def uninstall_identity(cp: ControlPlane, identity: Identity) -> None:
    """Cluster-scoped objects and the kube-node-lease Role outlive the namespace: delete them."""
    kubectl_delete(cp, identity.docs)


@contextlib.asynccontextmanager
async def installed(
    cp: ControlPlane, root: Path, *, namespace: str, node: str, **options: Any
) -> AsyncIterator[Identity]:
    """``install_identity`` for the block (off the event loop), uninstalled afterwards."""
    identity = await trio.to_thread.run_sync(
        functools.partial(install_identity, cp, root, namespace=namespace, node=node, **options)
    )
    try:
        yield identity
    finally:
        await trio.to_thread.run_sync(uninstall_identity, cp, identity)


# --- the agent on in-cluster credentials ------------------------------------------------------

_IN_CLUSTER: ContextVar[Identity] = ContextVar("vk_trio_test_in_cluster")


async def in_cluster_credentials(
    *, kubeconfig: str | None = None, context: str | None = None
) -> Credentials:
    """``resolve_credentials`` as it runs in the pod of the task's Identity: no kubeconfig,
    KUBERNETES_SERVICE_HOST/PORT set, the service-account directory at its place."""
    identity = _IN_CLUSTER.get()
    credentials = await resolve_credentials(
        kubeconfig=kubeconfig, context=context, env=identity.env, in_cluster_root=identity.root
    )
    assert credentials.source == "in-cluster", credentials.source
    return credentials


def use_in_cluster_credentials(patch: Callable[[object, str, object], None]) -> None:
    """Point the daemon's credential lookup at ``in_cluster_credentials`` (a monkeypatch)."""
    patch(daemon, "resolve_credentials", in_cluster_credentials)


@contextlib.asynccontextmanager
async def as_identity(identity: Identity) -> AsyncIterator[KubeClient]:
    """The agent's own client, on the identity's in-cluster credentials."""
    credentials = await resolve_credentials(env=identity.env, in_cluster_root=identity.root)
    async with KubeClient(credentials) as client:
        yield client


class RecordingFake(FakeProvider):
    """The fake cloud, remembering every InstanceSpec it was asked to create."""

    def __init__(self, node_name: str, *, state_file: Path) -> None:
        super().__init__(node_name, state_file=state_file)
        self.specs: list[InstanceSpec] = []

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.specs.append(spec)
        return await super().create(spec, offer)

    def spec_of(self, pod_name: str) -> InstanceSpec | None:
        found = [s for s in self.specs if s.pod_name == pod_name]
        return found[-1] if found else None


@dataclass
class AgentRun:
    crashed: BaseException | None = None


@dataclass
class Scene:
    """One agent as one identity, and what the capabilities need to act and look."""

    cp: ControlPlane
    admin: KubeClient
    identity: Identity
    fake: RecordingFake
    run: AgentRun = field(default_factory=AgentRun)

    @property
    def namespace(self) -> str:
        return self.identity.namespace

    @property
    def node(self) -> str:
        return self.identity.node


@contextlib.asynccontextmanager
async def agent_as(
    cp: ControlPlane,
    identity: Identity,
    tmp_path: Path,
    *,
    prepare: Sequence[Callable[[Scene], Awaitable[None]]] = (),
    **settings: Any,
) -> AsyncIterator[Scene]:
    """Run the agent (fake provider, leader election on as the chart sets it) as ``identity``.

    ``prepare`` steps run before the agent starts. The agent runs as a task that may die (a
    missing permission at start-up is fatal to it); ``Scene.run.crashed`` holds why.
    """
    config = agent_config(
        cp,
        tmp_path,
        kubeconfig=None,
        node_name=identity.node,
        leader_elect=True,  # no --namespace, as the chart: the ServiceAccount's is the default
        serving_cert="csr",  # as the chart runs it
        offload=True,
        node_identity=identity.node_identity,
        **settings,
    )
    fake = RecordingFake(identity.node, state_file=tmp_path / "fake-cloud.json")
    async with admin_client(cp) as admin:
        scene = Scene(cp=cp, admin=admin, identity=identity, fake=fake)
        for step in prepare:
            await step(scene)

        async def agent() -> None:
            _IN_CLUSTER.set(identity)
            try:
                await daemon.run_agent(config, provider=fake)
            except Exception as exc:  # the probes report it; the test decides if it matters
                scene.run.crashed = exc

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(agent)
                try:
                    yield scene
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await delete_node(admin, identity.node)


# --- waiting ---------------------------------------------------------------------------------


async def _poll(
    scene: Scene, probe: Callable[[], Awaitable[T | None]], *, within: float
) -> T | None:
    with trio.move_on_after(within):
        while scene.run.crashed is None:
            with contextlib.suppress(NotFound):
                result = await probe()
                if result:
                    return result
            await trio.sleep(POLL)
    return None


async def setup(
    scene: Scene,
    probe: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    within: float = SETUP_WITHIN,
) -> T:
    """A precondition: it must hold, or the test is wrong (AssertionError)."""
    result = await _poll(scene, probe, within=within)
    if not result:
        raise AssertionError(f"precondition failed: {what} ({_why(scene, within)})")
    return result


async def expect(
    scene: Scene, probe: Callable[[], Awaitable[T | None]], *, what: str, within: float
) -> T:
    """The capability itself: CapabilityMissing if it does not show within ``within`` s."""
    result = await _poll(scene, probe, within=within)
    if not result:
        raise CapabilityMissing(f"{what} ({_why(scene, within)})")
    return result


def _why(scene: Scene, within: float) -> str:
    if scene.run.crashed is not None:
        return f"the agent stopped: {scene.run.crashed!r}"
    return f"not within {within:g}s"


# --- what the capabilities look at ------------------------------------------------------------


async def node(scene: Scene) -> Node:
    found: Node = await scene.admin.get(NODES, scene.node)
    return found


def is_ready(found: Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in found.status.conditions)


async def pod(scene: Scene, name: str) -> Pod:
    found: Pod = await scene.admin.get(PODS, name, namespace=scene.namespace)
    return found


async def create_pod(
    scene: Scene, name: str, *, env_from: list[dict[str, Any]] | None = None, **kwargs: Any
) -> None:
    body = gpu_pod(name, scene.node, **kwargs)
    if env_from:
        body["spec"]["containers"][0]["envFrom"] = env_from
    await scene.admin.create(PODS, body, namespace=scene.namespace)


async def lease(scene: Scene, name: str, namespace: str) -> Lease:
    found: Lease = await scene.admin.get(LEASES, name, namespace=namespace)
    return found


async def renewed(
    scene: Scene, name: str, namespace: str, *, what: str, appears_within: float, within: float
) -> None:
    """The Lease appears, and then its renewTime moves on (within ``within`` s of the sighting)."""
    first = await expect(
        scene, functools.partial(lease, scene, name, namespace), what=what, within=appears_within
    )
    seen: datetime | None = first.spec.renew_time

    async def moved() -> bool:
        current = await lease(scene, name, namespace)
        return current.spec.renew_time != seen

    await expect(scene, moved, what=what, within=within)


async def events_of(scene: Scene, name: str) -> list[Event]:
    listed: ObjectList[Event] = await scene.admin.list(
        EVENTS, namespace=scene.namespace, field_selector=f"involvedObject.name={name}"
    )
    return listed.items


async def create_secret(scene: Scene, name: str, data: Mapping[str, str]) -> None:
    body = {"metadata": {"name": name}, "stringData": dict(data)}
    await scene.admin.create(SECRETS, body, namespace=scene.namespace)


async def create_config_map(scene: Scene, name: str, data: Mapping[str, str]) -> None:
    body = {"metadata": {"name": name}, "data": dict(data)}
    await scene.admin.create(CONFIGMAPS, body, namespace=scene.namespace)


async def create_job(
    scene: Scene, name: str, *, annotations: Mapping[str, str], pod_annotations: Mapping[str, str]
) -> None:
    template = gpu_pod(name, scene.node, annotations=dict(pod_annotations))
    del template["metadata"]["name"]
    body = {
        "metadata": {"name": name, "annotations": dict(annotations)},
        "spec": {"backoffLimit": 0, "template": template},
    }
    await scene.admin.create(JOBS, body, namespace=scene.namespace)


async def job_pod(scene: Scene, job: str) -> Pod | None:
    listed: ObjectList[Pod] = await scene.admin.list(
        PODS, namespace=scene.namespace, label_selector=f"job-name={job}"
    )
    return listed.items[0] if listed.items else None
