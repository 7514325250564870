"""The chart's RBAC is least privilege both ways: all of it is enough, and every verb is needed.

The agent runs in-process with the fake provider as the chart's ServiceAccount, on in-cluster
credentials (a token from ``kubectl create token``, the cluster CA, KUBERNETES_SERVICE_HOST/PORT;
see tests/packaging/rbac_support.py), against the real control plane. With the chart's RBAC as
rendered it does its whole job. Then each permission is taken away on its own, and the
capability that permission serves is shown missing. RULES pairs every permission the chart
grants with that capability, and a test checks that RULES and the rendered RBAC are the same
set, so a new rule without a reason, or a reason without a rule, fails.

The removal cases run concurrently (each its own namespace, node, release and identity), in one
fixture, so they cost about as long as the slowest one instead of their sum.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trio

from tests.agent_harness import admin_client, gpu_pod, unique_node
from tests.controlplane.launcher import ControlPlane
from tests.packaging import chart
from tests.packaging.burst_capabilities import (
    EARLY_JOB_OFFLOADED,
    JOB_NAMES_ITS_NODE,
    LATER_JOB_OFFLOADED,
)
from tests.packaging.capabilities import (
    CONFIG_MAP_ENV,
    EARLY_POD_RUNS,
    EVENT_COUNT,
    EVENTS,
    JOB_ANNOTATIONS,
    LATER_POD_RUNS,
    LEADER_RENEWED,
    LEADER_TAKEN,
    NODE_COMES_BACK,
    NODE_LEASE_CREATED,
    NODE_LEASE_RENEWED,
    NODE_READY,
    NODE_REGISTERED,
    NODE_ROLE_LABEL,
    POD_DELETION,
    POD_STATUS,
    SECRET_ENV,
    SERVICE_LINKS,
    Capability,
)
from tests.packaging.capabilities_kubelet_api import (
    KUBELET_API_AUTHZ,
    KUBELET_API_TOKENS,
    SERVING_CERT,
    quick_serving_cert,
)
from tests.packaging.chart import Grant
from tests.packaging.rbac_support import (
    NODE_LEASE_NAMESPACE,
    CapabilityMissing,
    Identity,
    agent_as,
    as_identity,
    install_identity,
    installed,
    release_values,
    uninstall_identity,
    use_in_cluster_credentials,
)
from vk_trio.errors import Forbidden
from vk_trio.kube.resources import JOBS, LEASES, NODES, PODS

NODE = "<node>"
LEADER = "vk-trio-<node>"
RELEASE_ROLE = "Role/<release namespace>"
COORDINATION = "coordination.k8s.io"


CSRS = ("certificates.k8s.io", "certificatesigningrequests")

# nodeIdentity bootstrap (the default): every permission the chart grants its ServiceAccount,
# and the capability that is lost without it. The pod work runs as system:node:<node>, whose
# permissions the Node authorizer gives (NODE_CAPABILITIES below, checked in the whole job).
RULES: tuple[tuple[Grant, Capability], ...] = (
    (Grant("ClusterRole", *CSRS, "create"), NODE_REGISTERED),
    (Grant("ClusterRole", *CSRS, "get"), NODE_REGISTERED),
    (Grant("ClusterRole", CSRS[0], f"{CSRS[1]}/nodeclient", "create"), NODE_REGISTERED),
    (Grant("ClusterRole", "", "nodes", "patch", (NODE,)), NODE_ROLE_LABEL),
    (Grant("ClusterRole", "batch", "jobs", "get"), JOB_ANNOTATIONS),
    (Grant("ClusterRole", "batch", "jobs", "list"), EARLY_JOB_OFFLOADED),
    (Grant("ClusterRole", "batch", "jobs", "watch"), LATER_JOB_OFFLOADED),
    (Grant("ClusterRole", "batch", "jobs", "patch"), JOB_NAMES_ITS_NODE),
    (Grant("ClusterRole", "", "pods", "list"), EARLY_JOB_OFFLOADED),
    (Grant("ClusterRole", "", "pods", "watch"), LATER_JOB_OFFLOADED),
    (Grant("ClusterRole", "", "pods/binding", "create"), EARLY_JOB_OFFLOADED),
    (Grant(RELEASE_ROLE, COORDINATION, "leases", "create"), LEADER_TAKEN),
    (Grant(RELEASE_ROLE, COORDINATION, "leases", "get", (LEADER,)), LEADER_TAKEN),
    (Grant(RELEASE_ROLE, COORDINATION, "leases", "patch", (LEADER,)), LEADER_RENEWED),
)
NODE_CAPABILITIES = (
    NODE_READY,
    NODE_LEASE_CREATED,
    NODE_LEASE_RENEWED,
    EARLY_POD_RUNS,
    LATER_POD_RUNS,
    POD_STATUS,
    POD_DELETION,
    EVENTS,
    EVENT_COUNT,
    SECRET_ENV,
    CONFIG_MAP_ENV,
    SERVICE_LINKS,
    KUBELET_API_TOKENS,
    KUBELET_API_AUTHZ,
    SERVING_CERT,
    NODE_COMES_BACK,
)

# nodeIdentity kubeconfig: the ServiceAccount does everything.
RULES_KUBECONFIG: tuple[tuple[Grant, Capability], ...] = (
    (Grant("ClusterRole", "", "nodes", "create"), NODE_REGISTERED),
    (Grant("ClusterRole", "", "nodes", "get", (NODE,)), NODE_REGISTERED),
    (Grant("ClusterRole", "", "nodes", "list", (NODE,)), NODE_READY),
    (Grant("ClusterRole", "", "nodes", "watch", (NODE,)), NODE_COMES_BACK),
    (Grant("ClusterRole", "", "nodes/status", "patch", (NODE,)), NODE_READY),
    (Grant("ClusterRole", "", "pods", "list"), EARLY_POD_RUNS),
    (Grant("ClusterRole", "", "pods", "watch"), LATER_POD_RUNS),
    (Grant("ClusterRole", "", "pods", "delete"), POD_DELETION),
    (Grant("ClusterRole", "", "pods/status", "patch"), POD_STATUS),
    (Grant("ClusterRole", "", "events", "create"), EVENTS),
    (Grant("ClusterRole", "", "events", "patch"), EVENT_COUNT),
    (Grant("ClusterRole", "", "secrets", "get"), SECRET_ENV),
    (Grant("ClusterRole", "", "configmaps", "get"), CONFIG_MAP_ENV),
    (Grant("ClusterRole", "", "services", "list"), SERVICE_LINKS),
    (Grant("ClusterRole", "batch", "jobs", "get"), JOB_ANNOTATIONS),
    (Grant("ClusterRole", "authentication.k8s.io", "tokenreviews", "create"), KUBELET_API_TOKENS),
    (
        Grant("ClusterRole", "authorization.k8s.io", "subjectaccessreviews", "create"),
        KUBELET_API_AUTHZ,
    ),
    (
        Grant("ClusterRole", "certificates.k8s.io", "certificatesigningrequests", "create"),
        SERVING_CERT,
    ),
    (
        Grant("ClusterRole", "certificates.k8s.io", "certificatesigningrequests", "get"),
        SERVING_CERT,
    ),
    (Grant("ClusterRole", "batch", "jobs", "list"), EARLY_JOB_OFFLOADED),
    (Grant("ClusterRole", "batch", "jobs", "watch"), LATER_JOB_OFFLOADED),
    (Grant("ClusterRole", "batch", "jobs", "patch"), JOB_NAMES_ITS_NODE),
    (Grant("ClusterRole", "", "pods/binding", "create"), EARLY_JOB_OFFLOADED),
    (Grant(f"Role/{NODE_LEASE_NAMESPACE}", COORDINATION, "leases", "create"), NODE_LEASE_CREATED),
    (
        Grant(f"Role/{NODE_LEASE_NAMESPACE}", COORDINATION, "leases", "patch", (NODE,)),
        NODE_LEASE_RENEWED,
    ),
    (Grant(RELEASE_ROLE, COORDINATION, "leases", "create"), LEADER_TAKEN),
    (Grant(RELEASE_ROLE, COORDINATION, "leases", "get", (LEADER,)), LEADER_TAKEN),
    (Grant(RELEASE_ROLE, COORDINATION, "leases", "patch", (LEADER,)), LEADER_RENEWED),
)
CAPABILITIES = tuple(dict.fromkeys([*(c for _, c in RULES), *NODE_CAPABILITIES]))
CAPABILITIES_KUBECONFIG = tuple(dict.fromkeys([*(c for _, c in RULES_KUBECONFIG), NODE_ROLE_LABEL]))
MODES = {
    "bootstrap": (RULES, CAPABILITIES),
    "kubeconfig": (RULES_KUBECONFIG, CAPABILITIES_KUBECONFIG),
}
BURST = (EARLY_JOB_OFFLOADED, LATER_JOB_OFFLOADED, JOB_NAMES_ITS_NODE)


def generic(grant: Grant, *, node_name: str, namespace: str) -> Grant:
    """A rendered grant with the release's node and namespace replaced by placeholders."""
    role = RELEASE_ROLE if grant.role == f"Role/{namespace}" else grant.role
    names = tuple(
        LEADER if n == f"vk-trio-{node_name}" else NODE if n == node_name else n
        for n in grant.names
    )
    return replace(grant, role=role, names=names)


def concrete(grant: Grant, *, node_name: str, namespace: str) -> Grant:
    """A RULES grant for one release."""
    role = f"Role/{namespace}" if grant.role == RELEASE_ROLE else grant.role
    names = tuple(
        f"vk-trio-{node_name}" if n == LEADER else node_name if n == NODE else n
        for n in grant.names
    )
    return replace(grant, role=role, names=names)


# --- the whole job with exactly the chart's RBAC ------------------------------------------------


def new_namespace(cp: ControlPlane, stem: str) -> str:
    name = f"{stem}-{secrets.token_hex(3)}"
    cp.kubectl("create", "namespace", name)
    cp.kubectl(
        "wait", "--for=create", "serviceaccount/default", f"--namespace={name}", "--timeout=60s"
    )
    return name


def drop_namespace(cp: ControlPlane, name: str) -> None:
    cp.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.mark.parametrize("mode", MODES)
def test_rules_name_every_permission_the_chart_grants_and_nothing_else(mode: str) -> None:
    node_name, namespace = "vk-rules", "vk-ns"
    values = release_values(node_name, nodeIdentity=mode)
    docs = chart.render(release="vk-trio", namespace=namespace, values=values)
    rendered = {generic(g, node_name=node_name, namespace=namespace) for g in chart.grants(docs)}
    rules = MODES[mode][0]
    listed = {grant for grant, _ in rules}
    assert sorted(map(str, rendered - listed)) == [], "granted, but no capability needs it"
    assert sorted(map(str, listed - rendered)) == [], "in RULES, but not granted"
    assert len(listed) == len(rules)


def test_with_a_node_identity_the_service_account_reads_no_secret_or_config_map() -> None:
    docs = chart.render(release="vk-trio", namespace="vk-ns", values=release_values("vk-n"))
    granted = chart.grants(docs)
    assert not [g for g in granted if g.resource in ("secrets", "configmaps")]
    assert not [g for g in granted if g.resource in ("pods/status", "events")]
    pods = {g.verb for g in granted if g.resource == "pods"}
    assert pods == {"list", "watch"}  # burst's unbound pods (offload): no get, patch, delete
    assert Grant("ClusterRole", CSRS[0], f"{CSRS[1]}/nodeclient", "create") in granted
    kubeconfig = chart.render(
        release="vk-trio",
        namespace="vk-ns",
        values=release_values("vk-n", nodeIdentity="kubeconfig"),
    )
    assert Grant("ClusterRole", "", "secrets", "get") in chart.grants(kubeconfig)


@pytest.mark.parametrize("mode", MODES)
def test_without_offload_the_chart_grants_nothing_burst_needs(mode: str) -> None:
    node_name, namespace = "vk-rules", "vk-ns"
    values = release_values(node_name, offload=False, nodeIdentity=mode)
    docs = chart.render(release="vk-trio", namespace=namespace, values=values)
    rendered = {generic(g, node_name=node_name, namespace=namespace) for g in chart.grants(docs)}
    rules = MODES[mode][0]
    assert rendered == {grant for grant, capability in rules if capability not in BURST}


@pytest.mark.controlplane
@pytest.mark.parametrize("mode", MODES)
async def test_the_agent_does_its_whole_job_with_exactly_the_charts_rbac(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    use_in_cluster_credentials(monkeypatch.setattr)
    quick_serving_cert(monkeypatch.setattr)
    capabilities = MODES[mode][1]
    prepare = [c.prepare for c in capabilities if c.prepare is not None]
    failures: list[str] = []
    node_name = unique_node("rbac")
    root = tmp_path / "serviceaccount"
    async with (
        installed(
            controlplane, root, namespace=namespace, node=node_name, node_identity=mode
        ) as identity,
        agent_as(controlplane, identity, tmp_path, prepare=prepare) as scene,
    ):

        async def check(capability: Capability) -> None:
            try:
                await capability.check(scene)
            except (CapabilityMissing, AssertionError) as exc:
                failures.append(f"{capability}: {exc}")

        async with trio.open_nursery() as nursery:
            for capability in capabilities:
                if capability is not NODE_COMES_BACK:  # it deletes the Node: last
                    nursery.start_soon(check, capability)
        await check(NODE_COMES_BACK)
        assert scene.run.crashed is None
    assert failures == []


def installed_identity(
    cp: ControlPlane, namespace: str, tmp_path: Path, mode: str
) -> Iterator[Identity]:
    """The chart's RBAC (and admission policy) for a fresh node, installed; no agent runs."""
    installed = install_identity(
        cp,
        tmp_path / "serviceaccount",
        namespace=namespace,
        node=unique_node("rbac"),
        node_identity=mode,
    )
    try:
        yield installed
    finally:
        uninstall_identity(cp, installed)


@pytest.fixture
def identity(controlplane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[Identity]:
    yield from installed_identity(controlplane, namespace, tmp_path, "bootstrap")


@pytest.fixture
def kubeconfig_identity(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Identity]:
    yield from installed_identity(controlplane, namespace, tmp_path, "kubeconfig")


def can_i(cp: ControlPlane, identity: Identity) -> Callable[..., bool]:
    def can(*args: str) -> bool:
        done = cp.kubectl("auth", "can-i", *args, f"--as={identity.username}", check=False)
        return done.stdout.strip() == "yes"

    return can


@pytest.mark.controlplane
def test_the_service_account_keeps_only_what_a_node_may_not_do(
    controlplane: ControlPlane, identity: Identity
) -> None:
    can = can_i(controlplane, identity)
    node_name, namespace = identity.node, identity.namespace
    for resource in ("secrets", "configmaps"):
        assert not can("get", resource, f"--namespace={namespace}")
        assert not can("get", resource, "--all-namespaces")
        assert not can("list", resource, "--all-namespaces")
    assert can("create", "certificatesigningrequests", "--subresource=nodeclient")
    assert not can("create", "certificatesigningrequests", "--subresource=selfnodeclient")
    assert not can("update", "certificatesigningrequests", "--subresource=approval")
    assert can("patch", f"nodes/{node_name}")
    assert not can("patch", "nodes/someone-else")
    assert not can("create", "nodes")
    assert not can("patch", f"nodes/{node_name}", "--subresource=status")
    assert not can("get", "pods", f"--namespace={namespace}")  # list/watch: burst only
    assert not can("patch", "pods/x", "--subresource=status", f"--namespace={namespace}")
    assert not can("delete", "pods", f"--namespace={namespace}")
    assert not can("create", "events", f"--namespace={namespace}")
    assert not can("create", "leases", f"--namespace={NODE_LEASE_NAMESPACE}")
    assert can("get", "jobs", f"--namespace={namespace}")


@pytest.mark.controlplane
async def test_the_admission_policy_lets_the_service_account_only_label_its_node(
    controlplane: ControlPlane, identity: Identity
) -> None:
    """The ServiceAccount may patch its own Node (RBAC) for the labels a node may not set on
    itself; the chart's ValidatingAdmissionPolicy refuses any change of the Node's spec."""
    node_name = identity.node
    async with admin_client(controlplane) as admin:
        await admin.create(NODES, {"metadata": {"name": node_name}})
    try:
        async with as_identity(identity) as agent:

            async def patched(body: Mapping[str, object]) -> tuple[bool, str]:
                try:
                    await agent.request(
                        "PATCH",
                        NODES.path(name=node_name),
                        params={"dryRun": "All"},
                        body=json.dumps(body).encode(),
                        content_type="application/merge-patch+json",
                    )
                except Forbidden as exc:
                    return False, str(exc)
                return True, ""

            taint = {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
            with trio.move_on_after(20):  # a new policy takes a moment to be enforced
                while (await patched(taint))[0]:
                    await trio.sleep(0.3)
            refused, why = await patched(taint)
            assert not refused and f"only labels its node {node_name}" in why, why
            role = {"metadata": {"labels": {"kubernetes.io/role": "agent"}}}
            assert await patched(role) == (True, "")
    finally:
        async with admin_client(controlplane) as admin:
            await admin.delete(NODES, node_name)


@pytest.mark.controlplane
def test_rbac_gives_no_other_verb_and_no_other_nodes_or_leases(
    controlplane: ControlPlane, kubeconfig_identity: Identity
) -> None:
    """nodeIdentity kubeconfig: the ServiceAccount does everything, on its own node only."""
    identity = kubeconfig_identity
    can = can_i(controlplane, identity)
    node_name, namespace = identity.node, identity.namespace
    assert can("patch", f"nodes/{node_name}", "--subresource=status")
    assert not can("patch", "nodes/someone-else", "--subresource=status")
    assert not can("patch", f"nodes/{node_name}")
    assert not can("delete", f"nodes/{node_name}")
    assert not can("get", "nodes/someone-else")
    assert not can("patch", "leases/someone-else", f"--namespace={NODE_LEASE_NAMESPACE}")
    assert not can("patch", "leases/vk-trio-someone-else", f"--namespace={namespace}")
    assert not can("create", "pods", f"--namespace={namespace}")
    assert can("create", "pods", "--subresource=binding", f"--namespace={namespace}")
    assert not can("patch", "pods", f"--namespace={namespace}")
    assert not can("update", "jobs", f"--namespace={namespace}")
    assert not can("get", "pods", f"--namespace={namespace}")
    assert not can("update", "pods/status", f"--namespace={namespace}")
    assert not can("list", "secrets", f"--namespace={namespace}")
    assert can("get", "secrets", f"--namespace={namespace}")


@pytest.mark.controlplane
async def test_the_admission_policy_keeps_the_identity_to_its_own_node_leases_and_pods(
    controlplane: ControlPlane, kubeconfig_identity: Identity
) -> None:
    """What RBAC allows by verb (create any Node or Lease, write any pod's status, delete any
    pod) the chart's ValidatingAdmissionPolicy narrows to the agent's own node. The requests
    are the agent's own (its client, its in-cluster token), dry-run, so nothing changes."""
    identity = kubeconfig_identity
    node_name, namespace = identity.node, identity.namespace
    for name, bound_to in (("mine", node_name), ("elsewhere", "someone-else")):
        async with admin_client(controlplane) as admin:
            await admin.create(PODS, gpu_pod(name, bound_to), namespace=namespace)

    async with as_identity(identity) as agent:

        async def allowed(method: str, path: str, body: Mapping[str, object]) -> tuple[bool, str]:
            patch = method == "PATCH"
            try:
                await agent.request(
                    method,
                    path,
                    params={"dryRun": "All"},
                    body=json.dumps(body).encode(),
                    content_type="application/merge-patch+json" if patch else "application/json",
                )
            except Forbidden as exc:
                return False, str(exc)
            return True, ""

        def node_body(name: str) -> dict[str, object]:
            return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}

        def lease_body(name: str) -> dict[str, object]:
            return {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name},
            }

        def leases(lease_namespace: str) -> str:
            return LEASES.path(namespace=lease_namespace)

        # a new policy takes a moment to be enforced
        with trio.move_on_after(20):
            while (await allowed("POST", NODES.path(), node_body("someone-else")))[0]:
                await trio.sleep(0.3)
        refused, why = await allowed("POST", NODES.path(), node_body("someone-else"))
        assert not refused and f"only its own node {node_name}" in why, why
        assert await allowed("POST", NODES.path(), node_body(node_name)) == (True, "")

        node_leases, own_leases = leases(NODE_LEASE_NAMESPACE), leases(namespace)
        assert (await allowed("POST", node_leases, lease_body(node_name)))[0]
        assert not (await allowed("POST", node_leases, lease_body("other")))[0]
        assert (await allowed("POST", own_leases, lease_body(f"vk-trio-{node_name}")))[0]
        assert not (await allowed("POST", own_leases, lease_body("vk-trio-other")))[0]

        status = {"status": {"message": "x"}}
        for name, own in (("mine", True), ("elsewhere", False)):
            path = PODS.path(namespace=namespace, name=name)
            ok, why = await allowed("PATCH", f"{path}/status", status)
            assert ok is own, why
            ok, why = await allowed("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1"})
            assert ok is own, why
            if not own:
                assert f"only pods bound to node {node_name}" in why, why

        # burst: a Binding only to its own node, with only the offload label and annotations;
        # a Job changed only by the offload annotations, naming its own node
        async with admin_client(controlplane) as admin:
            await admin.create(PODS, gpu_pod("floating", ""), namespace=namespace)
            await admin.create(JOBS, suspended_job("queued"), namespace=namespace)
        binding = PODS.path(namespace=namespace, name="floating", subresource="binding")

        def bind_to(node: str, **meta: dict[str, str]) -> dict[str, object]:
            return {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": "floating", **meta},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }

        ours = bind_to(
            node_name,
            labels={"runpod.io/managed": "true"},
            annotations={"vk-trio.io/offloaded-at": "2026-01-01T00:00:00Z"},
        )
        assert await allowed("POST", binding, ours) == (True, "")
        for wrong in (
            bind_to("someone-else"),
            bind_to(node_name, labels={"team": "a"}),
            bind_to(node_name, annotations={"note": "x"}),
        ):
            ok, why = await allowed("POST", binding, wrong)
            assert not ok and f"binds pods only to node {node_name}" in why, why
        job = JOBS.path(namespace=namespace, name="queued")

        def annotate(key: str, value: str) -> dict[str, object]:
            return {"metadata": {"annotations": {key: value}}}

        assert await allowed("PATCH", job, annotate("vk-trio.io/offloaded-to", node_name)) == (
            True,
            "",
        )
        for change in (
            annotate("vk-trio.io/offloaded-to", "someone-else"),
            annotate("owner", "me"),
            {"spec": {"parallelism": 3}},
            {"metadata": {"labels": {"team": "a"}}},
        ):
            ok, why = await allowed("PATCH", job, change)
            assert not ok and "only by its vk-trio.io/offload annotations" in why, why


def suspended_job(name: str) -> dict[str, object]:
    template = gpu_pod(name, "")
    del template["metadata"]["name"]
    return {"metadata": {"name": name}, "spec": {"suspend": True, "template": template}}


# --- each permission, taken away on its own ----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    broke: bool
    detail: str


async def without_one_permission(
    cp: ControlPlane, grant: Grant, capability: Capability, tmp_path: Path
) -> Outcome:
    """The capability, with the chart's RBAC minus ``grant``: did it break?"""
    namespace = await trio.to_thread.run_sync(new_namespace, cp, "rbac-minus")
    node_name = unique_node("minus")
    removed = concrete(grant, node_name=node_name, namespace=namespace)
    try:
        identity = await trio.to_thread.run_sync(
            functools.partial(
                install_identity,
                cp,
                tmp_path / "serviceaccount",
                namespace=namespace,
                node=node_name,
                change=lambda docs: chart.without(docs, removed),
            )
        )
        try:
            prepare = [capability.prepare] if capability.prepare else []
            async with agent_as(cp, identity, tmp_path, prepare=prepare) as scene:
                try:
                    await capability.check(scene)
                except CapabilityMissing as exc:
                    return Outcome(broke=True, detail=str(exc))
                return Outcome(broke=False, detail=f"{capability} still works without {removed}")
        finally:
            await trio.to_thread.run_sync(uninstall_identity, cp, identity)
    except AssertionError as exc:
        return Outcome(broke=False, detail=f"the case itself failed: {exc}")
    finally:
        await trio.to_thread.run_sync(drop_namespace, cp, namespace)


@pytest.fixture(scope="module")
def outcomes(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> dict[Grant, Outcome]:
    """Every removal case, run concurrently in one trio run."""
    results: dict[Grant, Outcome] = {}

    async def main() -> None:
        async def one(grant: Grant, capability: Capability) -> None:
            tmp = tmp_path_factory.mktemp("minus")
            results[grant] = await without_one_permission(controlplane, grant, capability, tmp)

        async with trio.open_nursery() as nursery:
            for grant, capability in RULES:
                nursery.start_soon(one, grant, capability)

    with pytest.MonkeyPatch.context() as patch:
        use_in_cluster_credentials(patch.setattr)
        quick_serving_cert(patch.setattr)
        trio.run(main)
    return results


@pytest.mark.controlplane
@pytest.mark.parametrize(("grant", "capability"), RULES, ids=[f"{g} -> {c}" for g, c in RULES])
def test_without_this_permission_the_capability_it_serves_is_lost(
    outcomes: dict[Grant, Outcome], grant: Grant, capability: Capability
) -> None:
    outcome = outcomes[grant]
    assert outcome.broke, outcome.detail
