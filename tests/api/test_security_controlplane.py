"""Who may call the agent's kubelet API (:10250), on the real control plane: the API server's own
kubelet client certificate is let in; anonymous callers, ServiceAccounts without nodes/proxy and
certificates from another CA are not (401, as from the kubelet, not a failed handshake). A
Secret's value printed by the workload reaches `kubectl logs` (it is the user's own output) and
never the agent's own logs or Events."""

from __future__ import annotations

import json
import logging
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
import trio

from tests.agent_harness import admin_client, eventually
from tests.api.scenes import scene
from tests.controlplane.launcher import ControlPlane
from tests.controlplane.pki import create_pki
from vk_trio.kube.resources import EVENTS, PODS, SECRETS

pytestmark = pytest.mark.controlplane


def _tls(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the agent serves a self-signed certificate here
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
    return context


@asynccontextmanager
async def kubelet(port: int, context: ssl.SSLContext) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        base_url=f"https://127.0.0.1:{port}", verify=context, timeout=10, trust_env=False
    ) as client:
        yield client


async def kubectl(cp: ControlPlane, *args: str) -> str:
    done = await trio.to_thread.run_sync(lambda: cp.kubectl(*args))
    return done.stdout


async def test_only_callers_the_api_server_authorizes_get_in(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    async with scene("fake", controlplane, tmp_path) as sc:
        api = sc.agent.api
        assert api is not None
        with trio.fail_after(30):
            await api.ready.wait()
        port = api.port
        assert port is not None
        node = sc.config.node_name

        async with kubelet(port, _tls()) as anonymous:
            answer = await anonymous.get("/pods")
            assert (answer.status_code, answer.text) == (401, "Unauthorized")

        # a ServiceAccount token (reviewed by the API server) without nodes/proxy
        await kubectl(controlplane, "-n", namespace, "create", "serviceaccount", "reader")
        token = (await kubectl(controlplane, "-n", namespace, "create", "token", "reader")).strip()
        async with kubelet(port, _tls()) as with_token:
            headers = {"authorization": f"Bearer {token}"}
            answer = await with_token.get("/pods", headers=headers)
            assert answer.status_code == 403
            user = f"system:serviceaccount:{namespace}:reader"
            expected = f"Forbidden (user={user}, verb=get, resource=nodes, subresource=proxy)"
            assert answer.text == expected
            made_up = await with_token.get("/pods", headers={"authorization": "Bearer made-up"})
            assert made_up.status_code == 401
            # granted nodes/proxy, the same token gets in (after the 30 s denial cache: a fresh
            # subresource is asked instead, nodes/stats)
            role = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": f"kubelet-stats-{namespace}"},
                "rules": [{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}],
            }
            await trio.to_thread.run_sync(
                lambda: controlplane.kubectl("apply", "-f", "-", stdin=json.dumps(role))
            )
            await kubectl(
                controlplane,
                "create",
                "clusterrolebinding",
                f"kubelet-stats-{namespace}",
                f"--clusterrole=kubelet-stats-{namespace}",
                f"--serviceaccount={namespace}:reader",
            )
            try:

                async def allowed() -> bool:
                    found = await with_token.get("/stats/summary", headers=headers)
                    return found.status_code == 200

                await eventually(allowed, within=20, what="nodes/stats granted")
            finally:
                for kind in ("clusterrolebinding", "clusterrole"):
                    await kubectl(controlplane, "delete", kind, f"kubelet-stats-{namespace}")

        # the API server's kubelet client certificate (what kubectl logs goes through)
        client_pair = controlplane.pki.apiserver_kubelet_client
        async with kubelet(port, _tls(client_pair.cert, client_pair.key)) as apiserver:
            answer = await apiserver.get("/pods")
            assert answer.status_code == 200
            assert answer.json()["kind"] == "PodList"
            assert (await apiserver.get("/healthz")).text == "ok"
            for path in (
                f"/exec/{namespace}/p/c",
                f"/portForward/{namespace}/p",
                f"/attach/{namespace}/p/c",
            ):
                refused = await apiserver.post(path)
                assert refused.status_code == 501
                assert "not supported by vk-trio yet" in refused.text

        # a client certificate from another CA names nobody, as at the kubelet: without a token
        # 401, and with one the token decides (here the ServiceAccount's, without nodes/proxy)
        other = create_pki(tmp_path / "other-pki")
        async with kubelet(port, _tls(other.admin.cert, other.admin.key)) as stranger:
            answer = await stranger.get("/pods")
            assert (answer.status_code, answer.text) == (401, "Unauthorized")
            answer = await stranger.get("/pods", headers=headers)
            assert answer.status_code == 403 and f"user={user}," in answer.text
        assert api.stats.requests[("/pods", 200)] == 1
        assert node  # the node name is in every authorization decision above


async def test_a_secret_printed_by_the_workload_is_in_kubectl_logs_only(
    controlplane: ControlPlane, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    value = f"s3cr3t-{secrets.token_hex(8)}"
    caplog.set_level(logging.DEBUG)
    async with (
        scene("runpod", controlplane, tmp_path, log_level="debug") as sc,
        admin_client(controlplane) as client,
    ):
        await client.create(
            SECRETS,
            {"metadata": {"name": "creds"}, "stringData": {"token": value}},
            namespace=namespace,
        )
        pod = sc.pod("leaky", "example/service:1", restart_policy="Always")
        container = pod["spec"]["containers"][0]
        container["command"] = ["sh", "-c", "echo token=$API_TOKEN; sleep 1000"]
        container["env"] = [
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
        ]
        await client.create(PODS, pod, namespace=namespace)

        async def printed() -> str | None:
            done = await trio.to_thread.run_sync(
                lambda: controlplane.kubectl("-n", namespace, "logs", "leaky", check=False)
            )
            return done.stdout if value in done.stdout else None

        assert (
            await eventually(printed, within=60, what="the workload's output") == f"token={value}\n"
        )
        # the kept log of an attempt, the metrics and the Events never carry it either
        events = await client.list(EVENTS, namespace=namespace)
        assert all(value not in (e.message or "") for e in events.items)
    agent_lines = [record.getMessage() for record in caplog.records]
    assert agent_lines, "the agent logged nothing at debug level"
    assert not [line for line in agent_lines if value in line]
