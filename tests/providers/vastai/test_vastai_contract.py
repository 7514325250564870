"""The provider contract suite against VastProvider, over real HTTP to the simulated Vast.ai.

The simulator keeps Vast.ai's rate limits (shrunk a hundredfold, with the client's pacing shrunk
alike) and its read lag, so the suite also proves the provider keeps its promises through them.

One adaptation: on Vast.ai a Job must set a command (its exit code is read through a shell
wrapper, and the image's default command is invisible to vk-trio: translate.py), while the
suite's Job specs have none. ``WithJobCommand`` gives them one on the way in; the refusal of a
command-less Job is tested in test_translate.py. Everything else runs unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import trio

from tests.providers.contract import *  # noqa: F403
from tests.providers.contract import NODE, ContractTarget, ProviderFactory
from tests.sim.vastai.support import API_KEY
from vk_trio.providers.base import Instance, InstanceSpec, LogLine, LogOptions, Offer, Requirements
from vk_trio.providers.fake import Workload as FakeWorkload
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.pacing import DEFAULT_INTERVALS
from vk_trio.sim.vastai import RateLimits, VastSim, Workload

SCALE = 0.01
JOB_COMMAND = ("/app/job",)
FAILURES = {
    "rate-limited": (429, {"detail": "API requests too frequent endpoint threshold=1.0"}),
    "unavailable": (503, {"error": "upstream unavailable"}),
    "payment-required": (402, {"success": False, "error": "missing_billing", "msg": "no credit"}),
}


def sim_workload(workload: FakeWorkload) -> Workload:
    """The contract's workload in Vast.ai's states: booting is null then ``created``, starting
    is ``loading`` (the image pull)."""
    return Workload(
        provision_seconds=workload.boot_seconds / 2,
        create_seconds=workload.boot_seconds / 2,
        load_seconds=workload.start_seconds,
        run_seconds=workload.run_seconds,
        exit_code=workload.exit_code,
        logs=workload.logs,
    )


class WithJobCommand:
    """The provider under test, giving Job specs a command as a Vast.ai user must."""

    def __init__(self, inner: VastProvider) -> None:
        self.inner = inner
        self.name = inner.name

    @staticmethod
    def _spec(spec: InstanceSpec) -> InstanceSpec:
        if spec.wants_exit_code and not spec.command and spec.image:
            return replace(spec, command=JOB_COMMAND)
        return spec

    def check(self, spec: InstanceSpec) -> None:
        self.inner.check(self._spec(spec))

    async def offers(self, need: Requirements) -> list[Offer]:
        return await self.inner.offers(need)

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        return await self.inner.create(self._spec(spec), offer)

    async def list(self) -> list[Instance]:
        return await self.inner.list()

    async def delete(self, instance_id: str) -> None:
        await self.inner.delete(instance_id)

    def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]:
        return self.inner.logs(instance_id, opts)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def provider_factory(nursery: trio.Nursery) -> AsyncIterator[ProviderFactory]:
    sim = VastSim(api_keys=[API_KEY], rate_limits=RateLimits().scaled(SCALE))
    await nursery.start(sim.serve)
    made: list[VastProvider] = []

    def fail_next_request(kind: str) -> None:
        status, body = FAILURES[kind]
        sim.fail_next("*", status=status, body=body)

    def factory(node_name: str = NODE) -> ContractTarget:
        provider = VastProvider(
            node_name,
            api_key=API_KEY,
            base_url=sim.url,
            clock=sim.clock,
            intervals={op: s * SCALE for op, s in DEFAULT_INTERVALS.items()},
            trust_env=False,
        )
        made.append(provider)
        return ContractTarget(
            provider=WithJobCommand(provider),
            node_name=node_name,
            script=lambda image, workload: sim.script(image, sim_workload(workload)),
            seed_foreign_instance=lambda: str(sim.rent_foreign(label="not vk-trio")),
            fail_next_request=fail_next_request,
        )

    yield factory
    for provider in made:
        await provider.aclose()
    assert sim.violations == []
    assert sim.rejected == []
    # sim.limiter.refused may count a few 429s: two provider objects on one account share its
    # limits (an agent restart, two nodes), and each waits its turn only for its own calls.
