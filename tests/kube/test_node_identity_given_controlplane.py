"""The agent on credentials given by a kubeconfig, on the real control plane: a node
certificate the operator hands it is used as given, and a bootstrap identity that gets no
certificate stops ``vk-trio run`` with one line."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio

from tests.agent_harness import (
    admin_client,
    agent_config,
    eventually,
    gpu_pod,
    running_agent,
    unique_node,
)
from tests.controlplane.kubeconfig import write_kubeconfig
from tests.controlplane.launcher import ControlPlane
from tests.controlplane.pki import KeyPair
from tests.packaging.rbac_support import FAST
from vk_trio import cli
from vk_trio.kube.resources import NODES, PODS

pytestmark = pytest.mark.controlplane

WITHIN = 20.0


async def test_from_a_kubeconfig_holding_a_node_certificate_the_agent_runs_as_given(
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``--node-identity auto`` with a kubeconfig uses it as given: an operator who hands the
    agent its node's certificate gets a working node (NodeRestriction refuses the role label,
    so it registers without it and says how to set it)."""
    node_name = unique_node("given")
    cert, key = await trio.to_thread.run_sync(
        functools.partial(
            controlplane.mint_client_cert, f"system:node:{node_name}", ["system:nodes"]
        )
    )
    kubeconfig = write_kubeconfig(
        tmp_path / "node.kubeconfig",
        server=controlplane.server,
        ca=controlplane.ca_pem,
        user=f"system:node:{node_name}",
        client=KeyPair(cert=cert, key=key),
    )
    config = agent_config(controlplane, tmp_path, kubeconfig=str(kubeconfig), node_name=node_name)
    assert config.node_identity == "auto"
    async with (
        running_agent(config, controlplane) as agent,
        admin_client(controlplane) as admin,
    ):
        assert agent.node_identity.startswith("kubeconfig")
        await admin.create(PODS, gpu_pod("p", node_name, annotations=FAST), namespace=namespace)

        async def running() -> bool:
            found = await admin.get(PODS, "p", namespace=namespace)
            return found.status.phase == "Running"

        await eventually(running, within=WITHIN, what="the pod runs")
        labels = (await admin.get(NODES, node_name)).metadata.labels
    assert "kubernetes.io/role" not in labels and labels["type"] == "virtual-kubelet"
    assert f"kubectl label node {node_name} kubernetes.io/role=agent" in caplog.text


def test_vk_trio_run_stops_with_one_line_when_no_certificate_comes(
    controlplane: ControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bootstrap identity that may not even ask: ``vk-trio run`` ends after
    ``--node-identity-wait`` with exit status 2 and one line saying why, no traceback."""
    node_name = unique_node("cli")
    cert, key = controlplane.mint_client_cert("vk-bootstrap-without-rights")
    kubeconfig = write_kubeconfig(
        tmp_path / "bootstrap.kubeconfig",
        server=controlplane.server,
        ca=controlplane.ca_pem,
        user="vk-bootstrap-without-rights",
        client=KeyPair(cert=cert, key=key),
    )
    flags = {
        "--kubeconfig": str(kubeconfig),
        "--nodename": node_name,
        "--provider": "fake",
        "--fake-state-file": str(tmp_path / "fake-cloud.json"),
        "--health-server-address": "127.0.0.1:0",
        "--kubelet-port": "0",
        "--node-identity": "bootstrap",
        "--node-identity-wait": "3",
    }
    code = cli.main(["run", *(part for pair in flags.items() for part in pair)])
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"vk-trio: no client certificate for system:node:{node_name} within 3s")
    assert "no certificatesigningrequest could be created" in last
    assert "Traceback" not in err
