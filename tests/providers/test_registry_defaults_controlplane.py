"""``vk-trio run`` with no ``--provider``, as a user starts it: each row of the README's table
"keys present → provider chosen", through the real command against the real control plane and
the simulated clouds. The Node's labels say which clouds it fronts and which are simulated.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.agent_harness import (
    AgentProcess,
    admin_client,
    agent_config,
    delete_node,
    eventually,
    unique_node,
)
from tests.controlplane.launcher import ControlPlane
from tests.sim.runpod.support import API_KEY as RUNPOD_KEY
from tests.sim.vastai.support import API_KEY as VAST_KEY
from vk_trio.kube.models import Node
from vk_trio.kube.resources import NODES
from vk_trio.sim.runpod import RunPodSim
from vk_trio.sim.vastai import VastSim

pytestmark = pytest.mark.controlplane
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
async def sims(nursery: trio.Nursery) -> AsyncIterator[tuple[RunPodSim, VastSim]]:
    runpod, vast = RunPodSim(api_key=RUNPOD_KEY), VastSim(api_keys=[VAST_KEY])
    await nursery.start(runpod.serve)
    await nursery.start(vast.serve)
    yield runpod, vast


class RunWithoutProvider(AgentProcess):
    """``vk-trio run`` as a user starts it: no --provider, no --namespace."""

    def argv(self) -> list[str]:
        assert self.config.kubeconfig
        return [
            sys.executable,
            *("-m", "vk_trio", "run", "--kubeconfig", self.config.kubeconfig),
            *("--nodename", self.config.node_name),
            *("--health-server-address", "127.0.0.1:0", "--node-ip", "127.0.0.1"),
        ]


def row_env(row: str, tmp_path: Path, runpod: RunPodSim, vast: VastSim) -> dict[str, str]:
    """The environment of one row; keys come the three ways a user gives them."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    urls = {"RUNPOD_API_URL": runpod.url, "VAST_API_URL": vast.url}
    if row == "runpod key":  # in a file named by RUNPOD_API_KEY_FILE
        (tmp_path / "rp.key").write_text(RUNPOD_KEY)
        return {"RUNPOD_API_KEY_FILE": str(tmp_path / "rp.key"), "RUNPOD_API_URL": runpod.url}
    if row == "vast.ai key":  # a systemd credential
        (credentials / "vast_api_key").write_text(VAST_KEY)
        return {"CREDENTIALS_DIRECTORY": str(credentials), "VAST_API_URL": vast.url}
    if row == "both keys":  # in the environment
        return {"RUNPOD_API_KEY": RUNPOD_KEY, "VAST_API_KEY": VAST_KEY, **urls}
    if row == "fake by name":
        return {"VK_PROVIDER": "fake", "RUNPOD_API_KEY": RUNPOD_KEY, **urls}
    return {}  # no key: the embedded simulated RunPod


# row, the node's vk-trio.io/providers and vk-trio.io/simulated labels, a line of its log
ROWS = [
    ("no key", "runpod", "runpod", "EMBEDDED SIMULATED RunPod"),
    ("runpod key", "runpod", None, "no --provider given: runpod"),
    ("vast.ai key", "vastai", None, "no --provider given: vastai"),
    ("both keys", "runpod.vastai", None, "no --provider given: runpod,vastai"),
    ("fake by name", "fake", "fake", "FAKE PROVIDER"),
]


@pytest.mark.parametrize("case", ROWS, ids=[row[0] for row in ROWS])
async def test_run_without_a_provider_fronts_the_clouds_whose_keys_are_set(
    controlplane: ControlPlane,
    tmp_path: Path,
    sims: tuple[RunPodSim, VastSim],
    case: tuple[str, str, str | None, str],
) -> None:
    row, providers, simulated, said = case
    config = agent_config(controlplane, tmp_path, node_name=unique_node("row"))
    node = config.node_name
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        **row_env(row, tmp_path, *sims),
    }
    log = tmp_path / "agent.log"
    agent = RunWithoutProvider(config, log, env=env)
    await agent.start()
    async with admin_client(controlplane) as client:
        try:

            async def ready() -> Node | None:
                try:
                    found: Node = await client.get(NODES, node)
                except Exception:  # not registered yet
                    return None
                up = any(c.type == "Ready" and c.status == "True" for c in found.status.conditions)
                return found if up else None

            registered = await eventually(ready, within=60, what=f"node {node} Ready ({row})")
            labels = registered.metadata.labels
            assert labels["vk-trio.io/providers"] == providers
            assert labels.get("vk-trio.io/simulated") == simulated
            first = providers.split(".", maxsplit=1)[0]
            taints = {t.key: t.value for t in registered.spec.taints}
            assert taints["virtual-kubelet.io/provider"] == first
            for cloud in providers.split("."):
                assert labels[f"cloud.vk-trio.io/{cloud}"] == "true"
            assert said in log.read_text()
            assert RUNPOD_KEY not in log.read_text() and VAST_KEY not in log.read_text()
        finally:
            code = await agent.stop()
            await delete_node(client, node)
    assert code == 0, log.read_text()[-2000:]
