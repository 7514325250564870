"""Registering the virtual node, and keeping it registered.

The Node is created NotReady and only reported Ready once the pod controller is running, so the
scheduler never sends pods to a node that cannot act on them. Node status is written as a
strategic-merge PATCH of the ``status`` subresource: conditions merge by ``type``, so conditions
other actors set on our node are kept. If someone deletes the Node, ``keep_registered`` sees it
on its watch and creates it again (and the lease follows the new UID).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from vk_trio.config import Config
from vk_trio.errors import Conflict, Forbidden, KubeError, NotFound
from vk_trio.faults import FaultLog
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Node
from vk_trio.kube.resources import NODES
from vk_trio.kube.watch import Changed, Synced, watch_resource
from vk_trio.logs import get_logger
from vk_trio.node.manifest import node_labels, node_may_set, node_object, node_status

_log = get_logger("vk_trio.node")
_faults = FaultLog()


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
