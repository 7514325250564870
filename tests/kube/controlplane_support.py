"""Helpers for the kube layer's tests against the real control plane (tests/controlplane).

kubectl runs through ``trio.run_process`` here, never ``ControlPlane.kubectl``: that one is
synchronous and would freeze the loop, and with it a FaultProxy serving in the same loop.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import trio

from tests.controlplane.launcher import ControlPlane, kubectl_path
from vk_trio.kube.auth import resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.pacing import Backoff

KUBECTL_TIMEOUT = 30.0
NO_SCHEDULER = "vk-trio-test-nobody"
"""A schedulerName nobody serves: our pods stay unbound, off the agents' nodes of other tests."""

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.5, jitter=0)


class KubectlFailed(Exception):
    """kubectl exited non-zero; the message has its stderr."""


async def kubectl(cp: ControlPlane, *args: str, stdin: str | None = None) -> str:
    """Run kubectl as admin without blocking the loop; its stdout, or KubectlFailed."""
    argv = [str(kubectl_path()), f"--kubeconfig={cp.kubeconfig}", *args]
    with trio.fail_after(KUBECTL_TIMEOUT):
        done = await trio.run_process(
            argv,
            stdin=stdin.encode() if stdin is not None else subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    if done.returncode != 0:
        raise KubectlFailed(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.decode()}")
    return done.stdout.decode()


async def kubectl_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(await kubectl(cp, *args, "-o", "json"))


@contextlib.asynccontextmanager
async def client_from(
    kubeconfig: Path, *, qps: float = 200, burst: int = 200, backoff: Backoff = FAST_BACKOFF
) -> AsyncIterator[KubeClient]:
    """A KubeClient resolved from a kubeconfig the way the agent resolves one."""
    credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})
    async with KubeClient(credentials, qps=qps, burst=burst, backoff=backoff) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def pod_manifest(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    node_name: str = "",
    containers: tuple[str, ...] = ("main",),
) -> dict[str, Any]:
    """A pod no scheduler picks up (or bound to ``node_name``), so no agent ever runs it."""
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": "busybox:1.36"} for c in containers],
        "terminationGracePeriodSeconds": 5,
    }
    if node_name:
        spec["nodeName"] = node_name
    else:
        spec["schedulerName"] = NO_SCHEDULER
    return {"metadata": {"name": name, "labels": dict(labels or {})}, "spec": spec}
