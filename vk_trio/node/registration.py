"""Registering the virtual node, and keeping it registered.

The Node is created NotReady and only reported Ready once the pod controller is running, so the
scheduler never sends pods to a node that cannot act on them. Node status is written as a
strategic-merge PATCH of the ``status`` subresource: conditions merge by ``type``, so conditions
other actors set on our node are kept. If someone deletes the Node, ``keep_registered`` sees it
on its watch and creates it again (and the lease follows the new UID).
"""

from __future__ import annotations

import ipaddress
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from vk_trio import __version__
from vk_trio.config import Config
from vk_trio.errors import Conflict, Forbidden, KubeError, NotFound
from vk_trio.faults import FaultLog
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Node
from vk_trio.kube.resources import NODES
from vk_trio.kube.timefmt import kube_time, utcnow
from vk_trio.kube.watch import Changed, Synced, watch_resource
from vk_trio.logs import get_logger

_log = get_logger("vk_trio.node")
_faults = FaultLog()

PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("NetworkUnavailable", "RouteCreated", "vk-trio needs no pod network routes"),
)


def default_node_ip(api_server: str) -> str:
    """Where the API server can reach us: loopback when it runs on loopback (a laptop cluster),
    else the address our traffic leaves from (the first non-loopback route)."""
    host = urlsplit(api_server).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "127.0.0.1"
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
    return outbound_ip()


def hostname_resolves_to(name: str, address: str) -> bool:
    """Does ``name`` resolve to ``address`` here? A Hostname address that does not resolve makes
    the API server (whose preferred address type is Hostname) fail to reach the kubelet API."""
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return any(info[4][0] == address for info in found)


def outbound_ip() -> str:
    """The address other hosts would see us from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routing lookup only
            address: str = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    return address


@dataclass
class NodeState:
    """What other components need to know about our Node."""

    name: str
    uid: str = ""
    ready: bool = False  # the pod controller runs: report Ready
    generation: int = 0  # bumped on every (re)registration
    changed: trio.Event = field(default_factory=trio.Event)
    # Conditions of our own beyond Ready and the pressures (e.g. the clouds' health), by type:
    # (status "True"/"False", reason, message). Set them, then touch().
    conditions: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def touch(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


def providers_label(config: Config) -> str:
    """The node's clouds as one label value: ``runpod.vastai`` (commas are not allowed)."""
    return ".".join(config.providers)


def node_labels(config: Config, *, simulated: tuple[str, ...] = ()) -> dict[str, str]:
    """The seeds' labels, and what the node fronts: ``vk-trio.io/provider`` (the first cloud,
    as before several clouds), ``vk-trio.io/providers`` (all of them), one
    ``cloud.vk-trio.io/<name>`` per cloud for node selectors, and ``vk-trio.io/simulated`` naming
    the clouds that are not real (the fake, embedded simulators), so none passes for a cloud."""
    labels = {
        "type": "virtual-kubelet",
        "kubernetes.io/role": "agent",
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
        "vk-trio.io/provider": next(iter(config.providers), ""),
        "vk-trio.io/providers": providers_label(config),
    }
    labels |= {f"cloud.vk-trio.io/{name}": "true" for name in config.providers}
    if simulated:
        labels["vk-trio.io/simulated"] = ".".join(simulated)
    return labels


# NodeRestriction lets a node set on itself, in the kubernetes.io and k8s.io domains, only these
# labels and those of the kubelet.kubernetes.io and node.kubernetes.io domains (its own rule).
NODE_SETTABLE_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
NODE_SETTABLE_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _within(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith(f".{parent}")


def node_may_set(key: str) -> bool:
    """May a node identity set this label on its own Node (NodeRestriction)? ``kubernetes.io/
    role`` and ``node-role.kubernetes.io/*`` it may not: those say what a node is for."""
    domain, slash, _ = key.rpartition("/")
    if not slash or not (_within(domain, "kubernetes.io") or _within(domain, "k8s.io")):
        return True
    return key in NODE_SETTABLE_LABELS or any(_within(domain, d) for d in NODE_SETTABLE_DOMAINS)


def node_capacity(config: Config) -> dict[str, str]:
    return {
        "cpu": config.cpu,
        "memory": config.memory,
        "pods": str(config.max_pods),
        "nvidia.com/gpu": str(config.gpus),
        "ephemeral-storage": "100Ti",
    }


def node_status(
    config: Config,
    *,
    ready: bool,
    node_ip: str,
    hostname: bool = False,
    kubelet_port: int | None = None,
    extra: dict[str, tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    now = kube_time(utcnow())
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
        }
        for kind, reason, message in PRESSURE_CONDITIONS
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "vk-trio is ready" if ready else "vk-trio is starting",
            "lastHeartbeatTime": now,
        }
    )
    for kind, (status, reason, message) in sorted((extra or {}).items()):
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
            }
        )
    capacity = node_capacity(config)
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": node_ip},
            *([{"type": "Hostname", "address": config.node_name}] if hostname else []),
        ],
        "daemonEndpoints": {
            "kubeletEndpoint": {
                "Port": config.kubelet_port if kubelet_port is None else kubelet_port
            }
        },
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": f"vk-trio {config.provider}",
            "containerRuntimeVersion": f"{providers_label(config)}://cloud",
            "kubeletVersion": f"v1.37.1-vk-trio-{__version__}",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_object(
    config: Config,
    *,
    node_ip: str,
    hostname: bool = False,
    simulated: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"providerID": f"vk-trio://{providers_label(config)}/{config.node_name}"}
    taint = config.taint_parts()
    if taint is not None:
        key, value, effect = taint
        spec["taints"] = [{"key": key, "value": value, "effect": effect}]
    return {
        "metadata": {
            "name": config.node_name,
            "labels": node_labels(config, simulated=simulated) if labels is None else labels,
        },
        "spec": spec,
        "status": node_status(config, ready=False, node_ip=node_ip, hostname=hostname),
    }


class NodeRegistrar:
    """Creates the Node, patches its status, and recreates it when it disappears.

    ``labeller``, when the client is a node identity, sets the labels NodeRestriction forbids a
    node to set on itself (``kubernetes.io/role``) right after the node creates its Node.
    """

    def __init__(
        self,
        client: KubeClient,
        config: Config,
        state: NodeState,
        *,
        simulated: tuple[str, ...] = (),
        labeller: KubeClient | None = None,
    ) -> None:
        self.client = client
        self.labeller = labeller
        self.config = config
        self.state = state
        self.simulated = simulated
        self.node_ip = config.node_ip or default_node_ip(client.server)
        self.hostname = False  # set by ensure(): only a name that resolves to node_ip
        self.kubelet_port = config.kubelet_port  # the bound port, once the kubelet API listens
        # One status patch at a time, each built when it is its turn: two in flight at once may
        # land in either order, and a heartbeat built before the kubelet port was known would
        # then put port 0 back (the API server dials 10250 for it) for a whole interval.
        self._status_lock = trio.Lock()

    async def ensure(self) -> Node:
        """Create the Node if it does not exist (labels/taints are ours on create only)."""
        self.hostname = await trio.to_thread.run_sync(
            hostname_resolves_to, self.config.node_name, self.node_ip, abandon_on_cancel=True
        )
        try:
            node = await self.client.get(NODES, self.config.node_name)
        except NotFound:
            node = await self._create()
        if node.metadata.uid != self.state.uid:
            self.state.uid = node.metadata.uid
            self.state.generation += 1
            self.state.touch()
        await self.patch_status()
        return node

    async def _create(self) -> Node:
        """Create the Node. As a node identity (a labeller is given, or the API server refuses
        labels, as NodeRestriction does for a kubeconfig holding a node certificate) it carries
        only the labels a node may set on itself; the others are set by the labeller."""
        labels = node_labels(self.config, simulated=self.simulated)
        own = labels if self.labeller is None else _settable(labels)
        try:
            node = await self._create_with(own)
        except Forbidden as exc:
            if own == _settable(labels) or "labels" not in str(exc):
                raise
            own = _settable(labels)
            node = await self._create_with(own)
        except Conflict:
            return await self.client.get(NODES, self.config.node_name)
        _log.info("registered node %s", self.config.node_name)
        if own != labels:
            await self._label({k: v for k, v in labels.items() if k not in own})
        return node

    async def _create_with(self, labels: dict[str, str]) -> Node:
        body = node_object(self.config, node_ip=self.node_ip, hostname=self.hostname, labels=labels)
        node: Node = await self.client.create(NODES, body)
        return node

    async def _label(self, labels: dict[str, str]) -> None:
        """The labels the node may not set itself, set by the labeller (a failure is logged:
        pods still run, only selectors on these labels miss the node)."""
        names = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if self.labeller is None:
            _log.warning(
                "node %s registered without %s: a node may not set these labels on itself "
                "(NodeRestriction); set them with another identity: kubectl label node %s %s",
                self.config.node_name,
                names,
                self.config.node_name,
                " ".join(f"{k}={v}" for k, v in sorted(labels.items())),
            )
            return
        try:
            await self.labeller.patch(
                NODES, self.config.node_name, {"metadata": {"labels": labels}}
            )
        except KubeError as exc:
            _log.warning(
                "node %s: could not set the labels %s (a node may not set them on itself): %s",
                self.config.node_name,
                names,
                exc,
            )

    async def patch_status(self) -> None:
        async with self._status_lock:
            await self._patch_status()

    async def _patch_status(self) -> None:
        status = node_status(
            self.config,
            ready=self.state.ready,
            node_ip=self.node_ip,
            hostname=self.hostname,
            kubelet_port=self.kubelet_port,
            extra=self.state.conditions,
        )
        # addresses merge by type; replace the list so a Hostname we no longer publish goes
        status["addresses"] = [{"$patch": "replace"}, *status["addresses"]]
        await self.client.patch(
            NODES,
            self.config.node_name,
            {"status": status},
            patch_type="strategic",
            subresource="status",
        )

    async def keep_registered(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Register, then watch our own Node and re-register it whenever it is deleted."""
        await self.ensure()

        async def on_event(event: Synced[Node] | Changed[Node]) -> None:
            gone = (isinstance(event, Synced) and not event.items) or (
                isinstance(event, Changed) and event.type == "DELETED"
            )
            if gone:
                _log.warning("node %s was deleted; registering it again", self.config.node_name)
                await _retrying(self.ensure)

        await watch_resource(
            self.client,
            NODES,
            on_event,
            field_selector=f"metadata.name={self.config.node_name}",
            task_status=task_status,
        )


def _settable(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if node_may_set(k)}


async def _retrying(action: Callable[[], Any], *, delay: float = 1.0) -> None:
    while True:
        try:
            await action()
            return
        except Exception as exc:  # whatever failed, the node must come back
            _faults.failed(
                "ensure",
                exc,
                log=_log,
                what=f"registering the node (retry in {delay:.0f}s)",
                routine=KubeError,
            )
            await trio.sleep(delay)
            delay = min(delay * 2, 30)
