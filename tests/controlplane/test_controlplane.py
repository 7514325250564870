"""The test control plane is a real cluster: API server, controllers and scheduler all work.

These tests guard the assumption every integration test makes. If the Job controller or the
scheduler were missing, tests of the agent would wait forever for pods that never appear or
never get a PodScheduled condition, and fail far from the cause.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.controlplane import launcher
from tests.controlplane.components import Ports
from tests.controlplane.launcher import ControlPlane

pytestmark = pytest.mark.controlplane

POD_WAIT_S = 60.0


def _admin_client(cp: ControlPlane) -> httpx2.Client:
    tls = ssl.create_default_context(cafile=str(cp.ca_pem))
    tls.load_cert_chain(cp.admin_cert, cp.admin_key)
    return httpx2.Client(base_url=cp.server, verify=tls, trust_env=False)


def test_apiserver_answers_readyz(controlplane: ControlPlane) -> None:
    with _admin_client(controlplane) as client:
        response = client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ok")


def test_kubectl_sees_default_namespace(controlplane: ControlPlane) -> None:
    done = controlplane.kubectl("get", "namespace", "default", "-o", "jsonpath={.status.phase}")
    assert done.stdout == "Active"


def test_static_token_authenticates_as_cluster_admin(controlplane: ControlPlane) -> None:
    done = controlplane.kubectl(
        f"--kubeconfig={controlplane.token_kubeconfig}", "auth", "can-i", "*", "*"
    )
    assert done.stdout.strip() == "yes"


def test_minted_client_cert_is_authenticated_but_has_no_rights(
    controlplane: ControlPlane,
) -> None:
    cert, key = controlplane.mint_client_cert("nobody", ["vk-trio:testers"])
    tls = ssl.create_default_context(cafile=str(controlplane.ca_pem))
    tls.load_cert_chain(cert, key)
    with httpx2.Client(base_url=controlplane.server, verify=tls, trust_env=False) as client:
        response = client.get("/api/v1/namespaces/default/pods")
    assert response.status_code == 403
    assert 'User "nobody"' in response.json()["message"]


def test_job_controller_creates_pod_that_scheduler_marks_unschedulable(
    controlplane: ControlPlane, namespace: str
) -> None:
    job = _job_manifest("unplaceable", node_selector={"vk-trio.test/matches": "nothing"})
    controlplane.kubectl("apply", f"--namespace={namespace}", "-f", "-", stdin=json.dumps(job))
    pod = _wait_for_pod(
        controlplane, namespace=namespace, job="unplaceable", ready=_is_unschedulable
    )
    assert pod["status"]["phase"] == "Pending"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"


def test_down_leaves_no_process_and_up_reuses_a_running_plane(tmp_path: Path) -> None:
    first = launcher.up(tmp_path)
    try:
        again = launcher.up(tmp_path)
        assert again.pids == first.pids
    finally:
        launcher.down(tmp_path)
    assert not [name for name, pid in first.pids.items() if _alive(pid)]
    assert not _processes_mentioning(tmp_path)


def test_a_port_taken_between_choosing_and_binding_starts_the_plane_on_other_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a parallel test worker's plane) takes a chosen port first."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    chosen: list[Ports] = []
    real = launcher._free_ports

    def free_ports() -> Ports:
        ports = real()
        if not chosen:  # the first choice: the controller manager's port is already in use
            ports = dataclasses.replace(ports, controller_manager=taken)
        chosen.append(ports)
        return ports

    monkeypatch.setattr(launcher, "_free_ports", free_ports)
    try:
        cp = launcher.up(tmp_path)
        try:
            assert len(chosen) == 2
            assert cp.ports == chosen[1] and cp.ports.controller_manager != taken
            assert not [name for name, pid in cp.pids.items() if not _alive(pid)]
        finally:
            launcher.down(tmp_path)
    finally:
        squatter.close()


def _job_manifest(name: str, *, node_selector: dict[str, str]) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36", "command": ["true"]}
    pod_spec = {"restartPolicy": "Never", "nodeSelector": node_selector, "containers": [container]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}},
    }


def _is_unschedulable(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(
        c["type"] == "PodScheduled" and c["status"] == "False" and c["reason"] == "Unschedulable"
        for c in conditions
    )


def _wait_for_pod(
    cp: ControlPlane, *, namespace: str, job: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + POD_WAIT_S
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        listing = cp.kubectl(
            "get", "pods", f"--namespace={namespace}", f"--selector=job-name={job}", "-o", "json"
        )
        pods = json.loads(listing.stdout)["items"]
        if pods and ready(pods[0]):
            return pods[0]
        time.sleep(0.5)
    raise AssertionError(f"no pod of job {job} got there within {POD_WAIT_S}s: {pods}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _processes_mentioning(path: Path) -> list[int]:
    needle = os.fsencode(str(path))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _alive(int(entry.name)):
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found
