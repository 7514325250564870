"""The command lines of etcd, kube-apiserver, kube-controller-manager and kube-scheduler.

The flags are those of a kubeadm cluster minus anything that needs a cloud, a kubelet on this
host or root, and tuned for a throw-away loopback cluster: etcd skips fsync, API Priority and
Fairness is off (it only adds start-up work here), leader election is off. The controller
manager runs every default controller (`*`), because the Job controller, garbage collector,
namespace and service-account controllers are exactly what a virtual kubelet leans on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.controlplane.pki import Pki

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class Ports:
    """Loopback TCP ports, chosen free at start-up and recorded in state.json."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where each component finds its inputs under the state directory."""

    state_dir: Path
    binary: Path
    ports: Ports

    @property
    def pki(self) -> Pki:
        return Pki(dir=self.state_dir / "pki")

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.etcd_client}"

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "tokens.csv"

    def kubeconfig(self, user: str) -> Path:
        return self.state_dir / f"{user}.kubeconfig"


def etcd_argv(layout: Layout) -> list[str]:
    peer = f"http://{LOOPBACK}:{layout.ports.etcd_peer}"
    return [
        str(layout.binary),
        "etcd",
        "--name=default",
        f"--data-dir={layout.state_dir / 'etcd'}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_argv(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(layout.binary),
        "kube-apiserver",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        # A loopback advertise address is refused by the endpoint reconciler; nothing in the
        # tests reaches the API server through the `kubernetes` Service, so run without it.
        "--endpoint-reconciler-type=none",
        f"--secure-port={layout.ports.apiserver}",
        f"--etcd-servers={layout.etcd_url}",
        f"--client-ca-file={pki.ca.cert}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        *_front_proxy(pki),
        f"--kubelet-client-certificate={pki.apiserver_kubelet_client.cert}",
        f"--kubelet-client-key={pki.apiserver_kubelet_client.key}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.service_account_pub}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        # what binds a real kubelet: a node identity writes only its own Node, Lease and pods
        "--enable-admission-plugins=NodeRestriction",
        f"--token-auth-file={layout.token_file}",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
    ]


def controller_manager_argv(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(layout.binary),
        "kube-controller-manager",
        *_delegated_serving(layout, "kube-controller-manager", layout.ports.controller_manager),
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
        "--controllers=*",
        "--leader-elect=false",
        "--profiling=false",
    ]


def scheduler_argv(layout: Layout) -> list[str]:
    return [
        str(layout.binary),
        "kube-scheduler",
        *_delegated_serving(layout, "kube-scheduler", layout.ports.scheduler),
        "--leader-elect=false",
        "--profiling=false",
    ]


def _delegated_serving(layout: Layout, user: str, port: int) -> list[str]:
    """Flags shared by the controller manager and the scheduler: API access and /healthz."""
    kubeconfig = layout.kubeconfig(user)
    serving = layout.pki.loopback_serving
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
    ]


def _front_proxy(pki: Pki) -> list[str]:
    """Request-header authentication, so delegated authn in the components is complete."""
    return [
        f"--requestheader-client-ca-file={pki.front_proxy_ca.cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
        f"--proxy-client-key-file={pki.front_proxy_client.key}",
    ]
