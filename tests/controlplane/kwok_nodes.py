"""Local GPU nodes that really run pods, for the burst tests: kwok, on the test control plane.

Burst is about a cluster whose own GPU nodes are full. kwok (sigs.k8s.io/kwok, built from its Go
module like the control plane: tests/controlplane/build.py ``ensure_kwok``) plays the kubelet of
nodes the test registers: it keeps them Ready (their Lease), runs every pod the real scheduler
binds to them, ends a Job's pod with exit 0 after its ``sim.vk-trio.io/run-for`` annotation
(default 1 s) and removes deleted pods (tests/controlplane/kwok/stages.yaml). The scheduler
counts their ``nvidia.com/gpu`` capacity as for any node, so "2 GPUs, 2 running Jobs" is full.

One kwok per test session manages every node annotated ``kwok.x-k8s.io/node: fake``.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.controlplane.build import KWOK_DIR, ensure_kwok
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Node
from vk_trio.kube.resources import NODES

STAGES = KWOK_DIR / "stages.yaml"
MANAGED_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
LOCAL_LABEL = ("vk-trio.test/local-gpu", "true")
RUN_FOR = "sim.vk-trio.io/run-for"
STOP_S = 10.0


@contextlib.contextmanager
def running_kwok(cp: ControlPlane, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """kwok against ``cp`` for the duration of the block; stopped (and reaped) afterwards."""
    log_dir.mkdir(parents=True, exist_ok=True)
    key, value = MANAGED_ANNOTATION
    argv = [
        str(ensure_kwok()),
        f"--kubeconfig={cp.kubeconfig}",
        f"--config={STAGES}",
        f"--manage-nodes-with-annotation-selector={key}={value}",
        "--node-lease-duration-seconds=40",
        "--cidr=10.244.0.0/16",
    ]
    with (log_dir / "kwok.log").open("wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        time.sleep(0.5)
        if proc.poll() is not None:
            tail = (log_dir / "kwok.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"kwok exited at once (rc={proc.returncode}):\n{tail}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def local_node(name: str, *, gpus: int) -> dict[str, Any]:
    key, value = MANAGED_ANNOTATION
    label, label_value = LOCAL_LABEL
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "metadata": {
            "name": name,
            "annotations": {key: value},
            "labels": {
                label: label_value,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


async def add_local_gpu_node(client: KubeClient, name: str, *, gpus: int = 2) -> None:
    """Register ``name`` with ``gpus`` nvidia.com/gpu; kwok turns it Ready within a second.

    The capacity is part of the create, as a kubelet registers: a later status patch could
    race kwok's first status write (which echoes the capacity it saw)."""
    created: Node = await client.create(NODES, local_node(name, gpus=gpus))
    if created.status.capacity.get("nvidia.com/gpu") != str(gpus):
        raise AssertionError(f"node {name} registered without its GPUs: {created.status}")
