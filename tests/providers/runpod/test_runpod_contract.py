"""The provider contract suite (tests/providers/contract.py) against RunPodProvider, over real
HTTP on loopback to the simulated RunPod, on trio's virtual clock.

One adaptation: on RunPod a Job must set a command (its exit code is read through a shell
wrapper, and the image's default command is invisible to us: mapping.py), while the suite's job
specs have none. ``JobsWithCommand`` gives them one before they reach the provider; the
provider's refusal of a command-less Job is tested in test_instances_jobs_billing.py. Everything
else runs unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import trio

from tests.providers.contract import *  # noqa: F403
from tests.providers.contract import NODE, ContractTarget, ProviderFactory
from tests.providers.runpod.conftest import make_provider
from tests.sim.runpod.support import API_KEY
from vk_trio.providers.base import Instance, InstanceSpec, LogLine, LogOptions, Offer, Requirements
from vk_trio.providers.fake import Workload as FakeWorkload
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.sim.runpod import Fault, RunPodSim, Timings, Workload

JOB_COMMAND = ("python", "job.py")


def sim_workload(workload: FakeWorkload) -> Workload:
    """The fake's workload as the simulator scripts it (timings mapped onto its phases)."""
    lines = tuple(workload.logs)
    interval = 1.0
    if workload.run_seconds is not None and len(lines) > 1:
        interval = workload.run_seconds / len(lines)
    return Workload(
        boot_seconds=max(0.0, workload.boot_seconds + workload.start_seconds - 2.0),
        lines=lines,
        line_interval=interval,
        duration=workload.run_seconds,
        exit_code=workload.exit_code,
    )


class JobsWithCommand:
    """The provider under test, giving Job specs a command as a RunPod user must."""

    def __init__(self, inner: RunPodProvider) -> None:
        self.inner = inner
        self.name = inner.name

    @staticmethod
    def _spec(spec: InstanceSpec) -> InstanceSpec:
        if spec.wants_exit_code and not (spec.command or spec.args):
            return replace(spec, command=JOB_COMMAND)
        return spec

    def check(self, spec: InstanceSpec) -> None:
        if spec.image:
            spec = self._spec(spec)
        self.inner.check(spec)

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
async def contract_sim(nursery: trio.Nursery) -> AsyncIterator[RunPodSim]:
    simulator = RunPodSim(
        api_key=API_KEY, timings=Timings(provisioning=1, starting=1, ports_delay=1)
    )
    await nursery.start(simulator.serve)
    yield simulator


@pytest.fixture
async def provider_factory(contract_sim: RunPodSim) -> AsyncIterator[ProviderFactory]:
    made: list[RunPodProvider] = []

    def script(image: str, workload: FakeWorkload) -> None:
        contract_sim.script_workload(image, sim_workload(workload))

    def seed_foreign_instance() -> str:
        body = {"name": "someone-elses-pod", "image": "x:1", "gpu": {"id": "NVIDIA RTX A5000"}}
        return contract_sim.create_pod(body).id

    def fail_next_request(kind: str) -> None:
        status = {"rate-limited": 429, "unavailable": 503, "payment-required": 402}[kind]
        contract_sim.add_fault(Fault(status=status, retry_after=2 if status == 429 else None))

    def factory(node_name: str = NODE) -> ContractTarget:
        provider = make_provider(contract_sim, node_name, log_idle_timeout=1.0)
        made.append(provider)
        return ContractTarget(
            provider=JobsWithCommand(provider),
            node_name=node_name,
            script=script,
            seed_foreign_instance=seed_foreign_instance,
            fail_next_request=fail_next_request,
            delete_latency=0.0,
        )

    yield factory
    for provider in made:
        await provider.aclose()
