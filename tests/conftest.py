"""Fixtures shared by the whole suite: the real control plane, namespaces, the fault proxy.

`controlplane` is session-scoped: one etcd + kube-apiserver + controller manager + scheduler
for the run (about 10 s to start once the binary is cached). It never skips: a test that needs
Kubernetes and cannot get it must fail loudly, not go green by omission. Set
VK_TRIO_CONTROLPLANE_STATE=DIR to reuse a plane started with `python -m tests.controlplane up
--state-dir DIR` (it is started there if not running, and left running after the session).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import launcher
from tests.controlplane.kubeconfig import write_kubeconfig
from tests.controlplane.launcher import ControlPlane
from tests.faultproxy import FaultProxy
from tests.sim import published_specs

ENV_STATE = "VK_TRIO_CONTROLPLANE_STATE"
NAMESPACE_READY_TIMEOUT = "60s"


@pytest.fixture(scope="session")
def controlplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane (admin kubeconfig, token kubeconfig, PKI, kubectl)."""
    reuse = os.environ.get(ENV_STATE)
    if reuse:
        yield launcher.up(Path(reuse))
        return
    state_dir = tmp_path_factory.mktemp("controlplane")
    cp = launcher.up(state_dir)
    try:
        yield cp
    finally:
        launcher.down(state_dir)


@pytest.fixture
def namespace(controlplane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, with its default ServiceAccount; deleted after."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{stem}-{secrets.token_hex(3)}"
    controlplane.kubectl("create", "namespace", name)
    try:
        controlplane.kubectl(
            "wait",
            "--for=create",
            "serviceaccount/default",
            f"--namespace={name}",
            f"--timeout={NAMESPACE_READY_TIMEOUT}",
        )
        yield name
    finally:
        controlplane.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
async def fault_proxy(controlplane: ControlPlane) -> AsyncIterator[FaultProxy]:
    """A FaultProxy in front of the control plane, in the test's trio loop."""
    async with FaultProxy.start(
        controlplane.server,
        ca_pem=controlplane.ca_pem,
        serving_cert=controlplane.serving.cert,
        serving_key=controlplane.serving.key,
    ) as proxy:
        yield proxy


@pytest.fixture
def proxy_kubeconfig(fault_proxy: FaultProxy, controlplane: ControlPlane, tmp_path: Path) -> Path:
    """A kubeconfig that reaches the API server through `fault_proxy` with the static token."""
    return write_kubeconfig(
        tmp_path / "proxy.kubeconfig",
        server=fault_proxy.url,
        ca=controlplane.ca_pem,
        user=launcher.TOKEN_USER,
        token=controlplane.token,
    )


# --- the one check that needs files from outside the repository -------------------------------

_LEFT_OUT = pytest.StashKey[list[str]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without VK_TRIO_SPECS_DIR, leave out the comparison with the published OpenAPI files.

    It is the only test that needs a file from outside the repository; everything else runs
    from a clone alone. It is deselected (never silently: the summary says so and how to run
    it), and .ci/run always sets the variable, so CI runs it and fails when the files are gone.
    """
    if os.environ.get(published_specs.ENV_SPECS_DIR):
        return
    left_out = [item for item in items if item.get_closest_marker("published_specs")]
    if left_out:
        items[:] = [item for item in items if item not in left_out]
        config.hook.pytest_deselected(items=left_out)
        config.stash[_LEFT_OUT] = [item.nodeid for item in left_out]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, [])
    if left_out:
        terminalreporter.write_line(
            f"left out {len(left_out)} test(s) comparing tests/sim/specs/ with the providers' "
            f"published OpenAPI files: set {published_specs.ENV_SPECS_DIR}=<folder holding "
            f"{published_specs.RUNPOD.source} and {published_specs.VASTAI.source}> to run "
            "them (.ci/run does)",
            yellow=True,
            bold=True,
        )
