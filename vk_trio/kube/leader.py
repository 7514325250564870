"""Lease-based leader election, so two replicas of the agent never both act on a node.

The algorithm is client-go's: the leader renews a coordination.k8s.io Lease every
``retry_period``; a standby takes the lease over once it has seen the same record unchanged for
``lease_duration`` (measured on its own clock, so clocks need not agree); every write carries the
lease's resourceVersion, so two candidates can never both win. A leader that has not renewed for
``renew_deadline`` (shorter than ``lease_duration``) stops acting on its own, before anyone else
may take over. On a clean shutdown the leader releases the lease so the standby takes over at
once instead of after a full lease duration.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from vk_trio.errors import Conflict, KubeError, NotFound
from vk_trio.faults import FaultLog
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Lease
from vk_trio.kube.resources import LEASES
from vk_trio.kube.timefmt import micro_time, utcnow
from vk_trio.logs import get_logger

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0

_log = get_logger("vk_trio.kube.leader")
_faults = FaultLog()


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(3)}"


@dataclass
class LeaderState:
    is_leader: bool = False
    transitions: int = 0  # times this process became leader


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.state = LeaderState()
        self._observed: tuple[str | None, object] | None = None
        self._observed_at = 0.0

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Forever: stand by, and while leading run ``lead`` (cancelled when leadership ends)."""
        while True:
            await self._acquire()
            self.state.is_leader = True
            self.state.transitions += 1
            _log.info("%s became the leader of %s/%s", self.identity, self.namespace, self.name)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._keep, nursery.cancel_scope)
                    await lead()
                    nursery.cancel_scope.cancel()
            finally:
                self.state.is_leader = False
            _log.warning(
                "%s lost the leadership of %s/%s", self.identity, self.namespace, self.name
            )

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                return
            await trio.sleep(self.retry_period)

    async def release(self) -> None:
        """Give the lease up (clean shutdown) so a standby need not wait for it to expire."""
        with trio.move_on_after(self.retry_period) as scope:
            scope.shield = True
            try:
                lease: Lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
                if lease.spec.holder_identity == self.identity:
                    await self._write(lease, holder="", duration=1, transitions=None)
            except Exception as exc:
                _faults.failed(
                    "release", exc, log=_log, what="releasing the leader lease", routine=KubeError
                )

    async def _keep(self, scope: trio.CancelScope) -> None:
        """Renew until renewals have failed for ``renew_deadline``; then stop leading."""
        last_ok = trio.current_time()
        while True:
            await trio.sleep(self.retry_period)
            with trio.move_on_at(last_ok + self.renew_deadline):
                if await self._attempt():
                    last_ok = trio.current_time()
                    continue
            if trio.current_time() - last_ok >= self.renew_deadline:
                scope.cancel()
                return

    async def _attempt(self) -> bool:
        """One try to acquire or renew; never raises for API trouble."""
        try:
            return await self._try_acquire_or_renew()
        except KubeError as exc:
            _log.debug("leader election attempt failed: %s", exc)
            return False
        except Exception as exc:  # a fault counts as a failed attempt, never as a crash
            _faults.report("attempt", exc, log=_log, what="leader election attempt")
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = trio.current_time()
        try:
            lease: Lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        except NotFound:
            try:
                await self.client.create(
                    LEASES, self._body(transitions=0, acquire=True), namespace=self.namespace
                )
            except Conflict:
                return False
            return True
        record = (lease.spec.holder_identity, lease.spec.renew_time)
        if record != self._observed:
            self._observed, self._observed_at = record, now
        holder = lease.spec.holder_identity or ""
        mine = holder == self.identity
        duration = lease.spec.lease_duration_seconds or self.lease_duration
        if holder and not mine and now < self._observed_at + duration:
            return False
        transitions = (lease.spec.lease_transitions or 0) + (0 if mine else 1)
        try:
            await self._write(
                lease,
                holder=self.identity,
                duration=self.lease_duration,
                transitions=transitions,
                acquire=not mine,
            )
        except Conflict:
            return False
        return True

    def _body(self, *, transitions: int, acquire: bool) -> dict[str, object]:
        stamp = micro_time(utcnow())
        spec: dict[str, object] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }
        if acquire:
            spec["acquireTime"] = stamp
        return {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}

    async def _write(
        self,
        lease: Lease,
        *,
        holder: str,
        duration: float,
        transitions: int | None,
        acquire: bool = False,
    ) -> None:
        stamp = micro_time(utcnow())
        spec: dict[str, object] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, int(duration)),
            "renewTime": stamp,
        }
        if transitions is not None:
            spec["leaseTransitions"] = transitions
        if acquire:
            spec["acquireTime"] = stamp
        patch = {"metadata": {"resourceVersion": lease.metadata.resource_version}, "spec": spec}
        await self.client.patch(LEASES, self.name, patch, namespace=self.namespace)
        self._observed = None
