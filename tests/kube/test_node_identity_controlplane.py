"""The agent as its node, system:node:<node>, on the real control plane (Node,RBAC authorization
and the NodeRestriction admission plugin, as a production cluster runs them).

The agent runs in-process as the chart's ServiceAccount (tests/packaging/rbac_support.py) with
the chart's default ``nodeIdentity: bootstrap``: it bootstraps a client certificate through the
CSR API (kube-controller-manager approves it), does its whole job with it, and is confined like
a kubelet: with its node credentials, read from its state directory as an attacker on the host
would, a Secret no pod of its node references is refused (403), and so is every Secret and
ConfigMap for the ServiceAccount.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
import trio

from tests.agent_harness import (
    admin_client,
    unique_node,
)
from tests.controlplane.launcher import ControlPlane
from tests.packaging import chart
from tests.packaging.capabilities_kubelet_api import (
    api_server_is_let_in,
    quick_serving_cert,
    serving_cert_is_issued,
    tokens_are_reviewed,
)
from tests.packaging.chart import Grant
from tests.packaging.rbac_support import (
    FAST,
    NODE_LEASE_NAMESPACE,
    Identity,
    Scene,
    agent_as,
    as_identity,
    create_config_map,
    create_pod,
    create_secret,
    events_of,
    installed,
    node,
    pod,
    renewed,
    setup,
    use_in_cluster_credentials,
)
from vk_trio.errors import Forbidden, NotFound
from vk_trio.kube import csr as kube_csr
from vk_trio.kube.auth import Credentials, resolve_credentials
from vk_trio.kube.certs import cert_info
from vk_trio.kube.client import KubeClient
from vk_trio.kube.csr import CSRS
from vk_trio.kube.node_identity import CLIENT_SIGNER, NodeIdentityError, open_node_client
from vk_trio.kube.resources import CONFIGMAPS, LEASES, NODES, PODS, SECRETS

pytestmark = pytest.mark.controlplane

WITHIN = 20.0


def account_dir(tmp_path: Path) -> Path:
    return tmp_path / "serviceaccount"


async def node_credentials_on_disk(identity: Identity, state_dir: Path) -> Credentials:
    """The node's client certificate and key as the agent keeps them (0600, state dir)."""
    store = state_dir / "node-client"
    for name in ("key.pem", "cert.pem"):
        assert stat.S_IMODE(os.stat(store / name).st_mode) == 0o600, name
    base = await resolve_credentials(env=identity.env, in_cluster_root=identity.root)
    return dataclasses.replace(
        base,
        client_cert_pem=(store / "cert.pem").read_bytes(),
        client_key_pem=(store / "key.pem").read_bytes(),
        token_source=None,
    )


def closed(pool: httpx2.AsyncClient) -> bool:
    return pool.is_closed


async def phase(scene: Scene, name: str) -> str:
    return (await pod(scene, name)).status.phase


async def test_the_agent_as_its_node_does_its_whole_job_and_reads_no_other_secret(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_in_cluster_credentials(monkeypatch.setattr)
    quick_serving_cert(monkeypatch.setattr)
    state = tmp_path / "state"
    async with (
        installed(
            controlplane, account_dir(tmp_path), namespace=namespace, node=unique_node("id")
        ) as identity,
        agent_as(controlplane, identity, tmp_path, state_dir=str(state)) as scene,
    ):
        await node_work_as_the_node(scene, state)


async def node_work_as_the_node(scene: Scene, state: Path) -> None:
    cp = scene.cp
    await create_secret(scene, "unrelated", {"password": "not-for-this-node"})
    await create_config_map(scene, "unrelated-config", {"x": "1"})
    await create_secret(scene, "creds", {"token": "s3cr3t-value"})
    await create_config_map(scene, "settings", {"EPOCHS": "3"})
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    annotations = {**FAST, "fake.vk-trio.io/logs": "epoch 1\nepoch 2"}
    await create_pod(
        scene,
        "trainer",
        annotations=annotations,
        env=env,
        env_from=[{"configMapRef": {"name": "settings"}}],
    )

    # the pod runs on the simulated cloud with its Secret and ConfigMap
    async def running() -> bool:
        return await phase(scene, "trainer") == "Running"

    await setup(scene, running, what="the pod runs", within=WITHIN)
    spec = scene.fake.spec_of("trainer")
    assert spec is not None
    assert spec.env["TOKEN"] == "s3cr3t-value" and spec.env["EPOCHS"] == "3"

    # the certificate is the node's, from the cluster's signer, asked for by the ServiceAccount
    credentials = await node_credentials_on_disk(scene.identity, state)
    assert credentials.client_cert_pem is not None
    info = cert_info(credentials.client_cert_pem)
    assert info.common_name == f"system:node:{scene.node}"
    assert info.organizations == ("system:nodes",)
    assert not info.self_issued
    csrs = (await scene.admin.list(CSRS)).items
    mine = [c for c in csrs if c.metadata.name.startswith(f"{scene.node}-client-")]
    assert mine and all(c.spec.signer_name == CLIENT_SIGNER for c in mine)

    async with KubeClient(credentials) as as_node:
        # a kubelet's confinement: the referenced objects, nothing else (403 from the API server)
        ns = scene.namespace
        assert (await as_node.get(SECRETS, "creds", namespace=ns)).metadata.name == "creds"
        await as_node.get(CONFIGMAPS, "settings", namespace=ns)
        with pytest.raises(Forbidden) as refused:
            await as_node.get(SECRETS, "unrelated", namespace=ns)
        assert refused.value.code == 403
        with pytest.raises(Forbidden):
            await as_node.get(CONFIGMAPS, "unrelated-config", namespace=ns)
        with pytest.raises(Forbidden):
            await as_node.list(SECRETS, namespace=ns)
        with pytest.raises(Forbidden):  # NodeRestriction: only its own Node
            await as_node.create(NODES, {"metadata": {"name": "someone-else"}})

    # and the ServiceAccount reads no Secret or ConfigMap at all
    async with as_identity(scene.identity) as service_account:
        with pytest.raises(Forbidden):
            await service_account.get(SECRETS, "creds", namespace=scene.namespace)
        with pytest.raises(Forbidden):
            await service_account.get(CONFIGMAPS, "settings", namespace=scene.namespace)

    # the labels a node may not set on itself are there (set by the ServiceAccount)
    labels = (await node(scene)).metadata.labels
    assert labels["kubernetes.io/role"] == "agent"
    assert labels["type"] == "virtual-kubelet"

    # events, the node Lease, the kubelet API (serving CSR, TokenReview, SAR) as the node
    reasons = {e.reason for e in await events_of(scene, "trainer")}
    assert {"Scheduled", "Started"} <= reasons, reasons
    await renewed(
        scene,
        scene.node,
        NODE_LEASE_NAMESPACE,
        what="the node Lease is renewed",
        appears_within=WITHIN,
        within=WITHIN,
    )
    await serving_cert_is_issued(scene)
    await api_server_is_let_in(scene)
    await tokens_are_reviewed(scene)

    async def logged() -> str | None:
        done = await trio.to_thread.run_sync(
            lambda: cp.kubectl("-n", scene.namespace, "logs", "trainer", check=False)
        )
        return done.stdout if "epoch 2" in done.stdout else None

    logs = await setup(scene, logged, what="kubectl logs reaches the agent", within=WITHIN)
    assert "s3cr3t-value" not in logs

    # deletion: the instance goes, then the pod
    await scene.admin.delete(PODS, "trainer", namespace=scene.namespace)

    async def gone() -> bool:
        try:
            await pod(scene, "trainer")
        except NotFound:
            return not scene.fake.live_instances()
        return False

    await setup(scene, gone, what="the deleted pod and its instance are gone", within=WITHIN)
    assert scene.run.crashed is None


async def test_a_request_nobody_approves_stops_the_agent_with_a_clear_error_in_bounded_time(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without certificatesigningrequests/nodeclient the request stays pending: the wait ends
    after the configured bound with what to do, and no key material reaches the log."""
    node_name = unique_node("pending")

    def without_nodeclient(docs: list[chart.Doc]) -> list[chart.Doc]:
        grant = Grant(
            "ClusterRole", "certificates.k8s.io", "certificatesigningrequests/nodeclient", "create"
        )
        return chart.without(docs, grant)

    async with installed(
        controlplane,
        account_dir(tmp_path),
        namespace=namespace,
        node=node_name,
        change=without_nodeclient,
    ) as identity:
        credentials = await resolve_credentials(env=identity.env, in_cluster_root=identity.root)
        async with KubeClient(credentials) as bootstrap:
            started = trio.current_time()
            with pytest.raises(NodeIdentityError) as failed:
                async with open_node_client(bootstrap, credentials, node_name=node_name, wait=4):
                    raise AssertionError("no certificate should have been issued")
            took = trio.current_time() - started
    message = str(failed.value)
    assert f"{node_name}-client-" in message and "still pending" in message, message
    assert "certificatesigningrequests/nodeclient" in message
    assert "kubectl certificate approve" in message
    assert 4 <= took < 30, took
    assert "PRIVATE KEY" not in caplog.text


async def test_a_renewed_certificate_is_swapped_in_without_dropping_a_watch(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The keeper renews (the wall clock is moved past 80 % of the first certificate's life); new
    requests go through a new connection pool with the new certificate, while a watch opened
    before the renewal keeps delivering and the old pool closes once it ends."""
    node_name = unique_node("renew")
    skew = {"by": timedelta(0)}
    real_clock = kube_csr.wall_clock
    monkeypatch.setattr(kube_csr, "wall_clock", lambda: real_clock() + skew["by"])
    monkeypatch.setattr(kube_csr, "POLL_SECONDS", 0.3)
    monkeypatch.setattr(kube_csr, "CLOCK_CHECK_SECONDS", 0.3)
    async with installed(
        controlplane, account_dir(tmp_path), namespace=namespace, node=node_name
    ) as identity:
        credentials = await resolve_credentials(env=identity.env, in_cluster_root=identity.root)
        async with (
            KubeClient(credentials) as bootstrap,
            open_node_client(
                bootstrap,
                credentials,
                node_name=node_name,
                wait=WITHIN,
                store=tmp_path / "node-client",
                expiration_seconds=600,  # the API's minimum
            ) as client,
        ):
            first_cert = (tmp_path / "node-client" / "cert.pem").read_bytes()
            first_pool = client._http
            path = PODS.path(namespace=namespace)
            params = {"watch": "true", "fieldSelector": f"spec.nodeName={node_name}"}
            async with client.stream(path, params=params, read_timeout=60) as watch:
                lines = watch.aiter_lines()
                skew["by"] = timedelta(minutes=30)  # past the 10-minute certificate's renewal

                async def renewed_cert() -> bool:
                    current = (tmp_path / "node-client" / "cert.pem").read_bytes()
                    return current != first_cert

                with trio.fail_after(WITHIN):
                    while not await renewed_cert():
                        await trio.sleep(0.2)
                skew["by"] = timedelta(0)
                assert client._http is not first_pool
                # new requests go out with the new certificate and are the node's
                lease = {"metadata": {"name": node_name}, "spec": {"holderIdentity": node_name}}
                await client.create(LEASES, lease, namespace=NODE_LEASE_NAMESPACE)
                # the watch opened before the renewal still delivers
                async with admin_client(controlplane) as admin:
                    body = {
                        "metadata": {"name": "after-renewal"},
                        "spec": {
                            "nodeName": node_name,
                            "containers": [{"name": "c", "image": "x"}],
                        },
                    }
                    await admin.create(PODS, body, namespace=namespace)
                with trio.fail_after(WITHIN):
                    async for line in lines:
                        if "after-renewal" in line:
                            break
                assert not closed(first_pool)
            assert closed(first_pool)  # its last stream ended
            renewed_pem = (tmp_path / "node-client" / "cert.pem").read_bytes()
            assert cert_info(renewed_pem).common_name == f"system:node:{node_name}"
