"""The two heartbeats of a kubelet: the node Lease every 10 s, the full node status every 60 s.

The node-lifecycle controller marks a node Unknown when its Lease stops being renewed (and
evicts its pods minutes later, which on a virtual node means deleting paid GPU instances), so
the lease renewal must be cheap and stubborn: one PATCH every ``RENEW_INTERVAL``, retried with
backoff on failure, re-created if it vanished, always owned by the current Node UID so that a
recreated Node gets a fresh lease. The status heartbeat refreshes conditions (and Ready, as
soon as the pod controller is running) without clobbering conditions set by others.
"""

from __future__ import annotations

from typing import Any

import trio

from vk_trio.errors import Conflict, KubeError, NotFound
from vk_trio.faults import FaultLog
from vk_trio.kube.client import KubeClient
from vk_trio.kube.resources import LEASES
from vk_trio.kube.timefmt import micro_time, utcnow
from vk_trio.logs import get_logger
from vk_trio.node.registration import NodeRegistrar, NodeState
from vk_trio.pacing import Backoff

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
RENEW_INTERVAL = 10.0
STATUS_INTERVAL = 60.0

_log = get_logger("vk_trio.node")
_faults = FaultLog()


class LeaseStats:
    def __init__(self) -> None:
        self.renewals = 0
        self.failures = 0
        self.last_renewed: float | None = None


def lease_body(state: NodeState) -> dict[str, Any]:
    return {
        "metadata": {
            "name": state.name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": state.name, "uid": state.uid}
            ],
        },
        "spec": {
            "holderIdentity": state.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time(utcnow()),
        },
    }


async def renew_lease(client: KubeClient, state: NodeState) -> None:
    body = lease_body(state)
    try:
        await client.patch(LEASES, state.name, body, namespace=LEASE_NAMESPACE)
    except NotFound:
        try:
            await client.create(LEASES, body, namespace=LEASE_NAMESPACE)
        except Conflict:  # created meanwhile by our previous life: patch it next round
            await client.patch(LEASES, state.name, body, namespace=LEASE_NAMESPACE)


async def run_lease(
    client: KubeClient,
    state: NodeState,
    *,
    stats: LeaseStats | None = None,
    interval: float = RENEW_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    stats = stats or LeaseStats()
    backoff = Backoff(initial=0.2, maximum=interval / 2)
    failures = 0
    started = False
    while True:
        try:
            await renew_lease(client, state)
        except Exception as exc:  # a renewal that fails is retried, whatever failed it
            stats.failures += 1
            _faults.failed("lease", exc, log=_log, what="lease renewal", routine=KubeError)
            await trio.sleep(backoff.delay(failures))
            failures += 1
            continue
        failures = 0
        _faults.clear("lease")
        stats.renewals += 1
        stats.last_renewed = trio.current_time()
        if not started:
            task_status.started()
            started = True
        with trio.move_on_after(interval):
            await state.changed.wait()  # a re-registered Node gets its lease at once


async def run_status_heartbeat(
    registrar: NodeRegistrar,
    *,
    interval: float = STATUS_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Patch node status every ``interval``, or at once when NodeState changes."""
    task_status.started()
    while True:
        changed = registrar.state.changed
        with trio.move_on_after(interval):
            await changed.wait()
        try:
            await registrar.patch_status()
        except NotFound:
            try:
                await registrar.ensure()
            except Exception as exc:
                _faults.failed(
                    "register", exc, log=_log, what="re-registering the node", routine=KubeError
                )
        except Exception as exc:
            _faults.failed("status", exc, log=_log, what="node status heartbeat", routine=KubeError)
