"""Leader election on the real control plane: one leader, takeover, and a leader that steps down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from tests.agent_harness import admin_client
from tests.controlplane.launcher import ControlPlane
from tests.faultproxy import FaultProxy
from vk_trio.kube.auth import resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.leader import LeaderElector
from vk_trio.kube.models import Lease
from vk_trio.kube.resources import LEASES
from vk_trio.pacing import Backoff

pytestmark = pytest.mark.controlplane

FAST = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}


class Leadership:
    """Records when ``lead`` ran for each candidate."""

    def __init__(self) -> None:
        self.leading: set[str] = set()
        self.overlaps = 0
        self.started: dict[str, float] = {}
        self.stopped: dict[str, float] = {}

    def lead(self, who: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if self.leading:
                self.overlaps += 1
            self.leading.add(who)
            self.started[who] = trio.current_time()
            try:
                await trio.sleep_forever()
            finally:
                self.leading.discard(who)
                self.stopped[who] = trio.current_time()

        return run


async def test_one_of_two_candidates_leads_and_the_other_takes_over_after_a_crash(
    controlplane: ControlPlane, namespace: str
) -> None:
    seen = Leadership()
    async with admin_client(controlplane) as client:
        first = LeaderElector(client, namespace=namespace, name="vk", identity="a", **FAST)
        second = LeaderElector(client, namespace=namespace, name="vk", identity="b", **FAST)
        async with trio.open_nursery() as outer:
            crash_a = trio.CancelScope()

            async def run_a() -> None:
                with crash_a:  # cancelled without release(): a crash
                    await first.run(seen.lead("a"))

            outer.start_soon(run_a)
            with trio.fail_after(10):
                while "a" not in seen.leading:
                    await trio.sleep(0.1)
            outer.start_soon(second.run, seen.lead("b"))
            await trio.sleep(4)  # longer than a lease: b must still wait, a renews
            assert seen.leading == {"a"}
            crashed_at = trio.current_time()
            crash_a.cancel()
            with trio.fail_after(10):
                while "b" not in seen.leading:
                    await trio.sleep(0.1)
            took = seen.started["b"] - crashed_at
            assert took <= FAST["lease_duration"] + 2 * FAST["retry_period"] + 1
            lease: Lease = await client.get(LEASES, "vk", namespace=namespace)
            assert lease.spec.holder_identity == "b"
            assert lease.spec.lease_transitions == 1
            outer.cancel_scope.cancel()
    assert seen.overlaps == 0


async def test_a_leader_cut_off_from_the_api_stops_before_anyone_else_may_lead(
    controlplane: ControlPlane, namespace: str, fault_proxy: FaultProxy, proxy_kubeconfig: Path
) -> None:
    seen = Leadership()
    credentials = await resolve_credentials(kubeconfig=str(proxy_kubeconfig), env={})
    async with (
        KubeClient(credentials, max_retries=0, backoff=Backoff(initial=0.1)) as cut_off,
        admin_client(controlplane) as healthy,
    ):
        leader = LeaderElector(cut_off, namespace=namespace, name="vk", identity="a", **FAST)
        standby = LeaderElector(healthy, namespace=namespace, name="vk", identity="b", **FAST)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(leader.run, seen.lead("a"))
            with trio.fail_after(10):
                while "a" not in seen.leading:
                    await trio.sleep(0.1)
            nursery.start_soon(standby.run, seen.lead("b"))
            fault_proxy.fail_next(10_000, status=503)  # the leader can no longer renew
            with trio.fail_after(15):
                while "b" not in seen.leading:
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert seen.stopped["a"] < seen.started["b"], "the old leader must stop first"
    assert seen.overlaps == 0


async def test_release_hands_the_lease_over_at_once(
    controlplane: ControlPlane, namespace: str
) -> None:
    seen = Leadership()
    async with admin_client(controlplane) as client:
        first = LeaderElector(
            client,
            namespace=namespace,
            name="vk",
            identity="a",
            lease_duration=30,
            renew_deadline=20,
            retry_period=0.5,
        )
        second = LeaderElector(
            client,
            namespace=namespace,
            name="vk",
            identity="b",
            lease_duration=30,
            renew_deadline=20,
            retry_period=0.5,
        )
        async with trio.open_nursery() as outer:
            stop_a = trio.CancelScope()

            async def run_a() -> None:
                with stop_a:
                    try:
                        await first.run(seen.lead("a"))
                    finally:
                        await first.release()

            outer.start_soon(run_a)
            with trio.fail_after(10):
                while "a" not in seen.leading:
                    await trio.sleep(0.1)
            outer.start_soon(second.run, seen.lead("b"))
            await trio.sleep(1)
            stop_a.cancel()
            released = trio.current_time()
            with trio.fail_after(8):  # far less than the 30 s lease
                while "b" not in seen.leading:
                    await trio.sleep(0.1)
            assert seen.started["b"] - released < 5
            outer.cancel_scope.cancel()
