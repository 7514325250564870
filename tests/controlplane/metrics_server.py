"""metrics-server for `kubectl top`, built from its Go module and run beside the control plane.

The binary comes from ``sigs.k8s.io/metrics-server`` at the version pinned in
tests/controlplane/metricsserver/go.mod (a ``tool`` directive) and go.sum, built like the control
plane: once, cached under ~/.cache/vk-trio/metrics-server-<hash of go.mod and go.sum>/, under a
lock (packaging/gobuild.py). About 7 to 10 minutes cold on two cores, nothing when cached.

Running it: the API server's aggregation layer is already configured (front-proxy CA and client
certificate, request-header flags in components.py). :func:`start` starts metrics-server on a free
loopback port with a serving certificate for ``metrics-server.kube-system.svc`` from the cluster
CA, and registers it the way its manifests do: an ExternalName Service (no kube-proxy here, so the
aggregator dials ``localhost`` directly) and the APIService ``v1beta1.metrics.k8s.io`` with the
cluster CA as its caBundle. Kubelets are scraped at their InternalIP and the port their Node
advertises, their serving certificate verified against the cluster CA unless ``insecure_tls``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.controlplane import processes
from tests.controlplane.build import BuildError, gobuild
from tests.controlplane.launcher import ControlPlane
from tests.controlplane.pki import mint_serving_cert

MODULE_DIR = Path(__file__).resolve().parent / "metricsserver"
PACKAGE = "sigs.k8s.io/metrics-server/cmd/metrics-server"
BINARY_NAME = "metrics-server"
ENV_PREBUILT = "VK_TRIO_METRICS_SERVER_BIN"
SERVICE = "metrics-server"
NAMESPACE = "kube-system"
APISERVICE = "v1beta1.metrics.k8s.io"
RESOLUTION = "10s"  # the smallest metrics-server accepts
AVAILABLE_TIMEOUT_S = 120.0


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update(name.encode() + b"\0" + (MODULE_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_binary_path() -> Path:
    root: Path = gobuild().cache_root()
    return root / f"metrics-server-{source_hash()}" / BINARY_NAME


def ensure_binary() -> Path:
    """A runnable metrics-server, built first if the cache lacks it."""
    prebuilt = os.environ.get(ENV_PREBUILT)
    if prebuilt:
        return Path(prebuilt)

    def build(output: Path) -> None:
        flags = ("-trimpath", "-buildvcs=false", "-ldflags=-s -w")
        try:
            gobuild().go_build(flags, PACKAGE, cwd=MODULE_DIR, output=output)
        except gobuild().GoBuildFailed as exc:
            raise BuildError(str(exc)) from None

    target: Path = gobuild().cached_build(cached_binary_path(), build)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    binary: Path


def start(cp: ControlPlane, *, insecure_tls: bool = False) -> Running:
    """Start metrics-server and register it; returns once its APIService is Available (which
    needs a first successful scrape: call this from a thread when the kubelet API under test
    runs in the same process)."""
    binary = ensure_binary()
    port = _free_port()
    serving = mint_serving_cert(
        cp.pki, "metrics-server", sans=(f"{SERVICE}.{NAMESPACE}.svc", "localhost", "127.0.0.1")
    )
    kubeconfig = str(cp.kubeconfig)
    argv = [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--metric-resolution={RESOLUTION}",
        "--kubelet-request-timeout=5s",
        "--v=2",
        "--kubelet-insecure-tls"
        if insecure_tls
        else f"--kubelet-certificate-authority={cp.ca_pem}",
    ]
    log = cp.state_dir / "logs" / f"{BINARY_NAME}.log"
    running = Running(processes.spawn(BINARY_NAME, argv, log_dir=log.parent), port, binary)
    try:
        _register(cp, port)
        _wait_available(
            cp, log, alive=lambda: processes.is_ours(running.pid, binary=binary, name=BINARY_NAME)
        )
    except BaseException:
        stop(cp, running)
        raise
    return running


def stop(cp: ControlPlane, running: Running) -> None:
    cp.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found", check=False)
    cp.kubectl("delete", "service", SERVICE, "-n", NAMESPACE, "--ignore-not-found", check=False)
    processes.stop_all([(BINARY_NAME, running.pid)], binary=running.binary)


def _register(cp: ControlPlane, port: int) -> None:
    ca_bundle = base64.b64encode(cp.ca_pem.read_bytes()).decode()
    objects = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": APISERVICE},
                "spec": {
                    "service": {"name": SERVICE, "namespace": NAMESPACE, "port": port},
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "caBundle": ca_bundle,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        ],
    }
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(objects))


def _wait_available(cp: ControlPlane, log: Path, *, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + AVAILABLE_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError(f"metrics-server exited:\n{processes.log_tail(log)}")
        done = cp.kubectl("get", "apiservice", APISERVICE, "-o", "json", check=False)
        if done.returncode == 0:
            conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
            available = [c for c in conditions if c.get("type") == "Available"]
            if available and available[0].get("status") == "True":
                return
            last = json.dumps(available)
        time.sleep(1.0)
    raise AssertionError(
        f"APIService {APISERVICE} not Available after {AVAILABLE_TIMEOUT_S:.0f}s: {last}\n"
        f"{processes.log_tail(log)}"
    )
