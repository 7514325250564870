"""`kubectl top pod` and `kubectl top node` through a real metrics-server and the API server's
aggregation layer, with the kubelet API's serving certificate issued by the cluster's CSR API
(approved the way an operator would, with kubectl) and verified by metrics-server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from tests.agent_harness import admin_client, agent_config, eventually, gpu_pod, running_agent
from tests.controlplane import metrics_server
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.resources import PODS

pytestmark = pytest.mark.controlplane


async def kubectl(cp: ControlPlane, *args: str) -> tuple[int, str, str]:
    done = await trio.to_thread.run_sync(lambda: cp.kubectl(*args, check=False))
    return done.returncode, done.stdout, done.stderr


async def test_kubectl_top_pod_and_node_through_metrics_server_with_an_approved_serving_cert(
    controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    config = agent_config(
        controlplane, tmp_path, serving_cert="csr", reconcile_interval="2", state_dir=str(tmp_path)
    )
    async with running_agent(config, controlplane) as agent:
        assert agent.api is not None

        async def pending() -> str | None:  # approve it as an operator would
            _, out, _ = await kubectl(controlplane, "get", "csr", "-o", "name")
            names = [n for n in out.split() if config.node_name in n]
            return names[0] if names else None

        csr = await eventually(pending, within=30, what="the kubelet-serving CSR")
        code, _, err = await kubectl(controlplane, "certificate", "approve", csr)
        assert code == 0, err
        with trio.fail_after(60):
            await agent.api.ready.wait()
        assert agent.api.tls.source == "csr"
        info = agent.api.tls.info
        assert info is not None and info.common_name == f"system:node:{config.node_name}"
        assert not info.self_issued
        # kept for a restart, 0600
        assert oct((tmp_path / "pki" / "key.pem").stat().st_mode & 0o777) == "0o600"

        async with admin_client(controlplane) as client:
            pod = gpu_pod("busy", config.node_name, restart_policy="Always")
            await client.create(PODS, pod, namespace=namespace)
            # metrics-server verifies the kubelet API's certificate with the cluster CA
            server = await trio.to_thread.run_sync(metrics_server.start, controlplane)
            try:

                async def top_pod() -> str | None:
                    code, out, _ = await kubectl(
                        controlplane, "top", "pod", "busy", "-n", namespace
                    )
                    return out if code == 0 else None

                out = await eventually(top_pod, within=150, what="kubectl top pod")
                row = out.splitlines()[1].split()
                assert row[0] == "busy"
                cpu_millis = int(row[1].rstrip("m"))
                assert 200 <= cpu_millis <= 800  # the fake reports 0.25 to 0.75 cores
                assert row[2] == "256Mi"

                async def top_node() -> str | None:
                    code, out, _ = await kubectl(controlplane, "top", "node", config.node_name)
                    return out if code == 0 else None

                out = await eventually(top_node, within=90, what="kubectl top node")
                assert re.search(rf"^{config.node_name}\s+\d+m\s+\S+\s+256Mi", out, re.M), out
            finally:
                await trio.to_thread.run_sync(metrics_server.stop, controlplane, server)
            await client.delete(PODS, "busy", namespace=namespace)
