"""Exits and restarts on RunPod: the nonce'd marker, restarts under Always, rationed log reads,
a shared catalog read, and creates that stop when the pod no longer wants them."""

from __future__ import annotations

import shlex

import pytest
import trio
import trio.testing

from tests.providers.runpod.conftest import make_provider
from tests.providers.runpod.test_requests_and_retries import rent, spec
from vk_trio.providers import exit_marker
from vk_trio.providers.base import (
    CreateAborted,
    InstanceState,
    InvalidAnnotation,
    LogOptions,
    NoCapacity,
    Requirements,
)
from vk_trio.providers.placement import place
from vk_trio.providers.runpod import RunPodProvider, mapping
from vk_trio.providers.runpod.offers import Candidate
from vk_trio.sim.runpod import Fault, RunPodSim, Workload

TRAIN = ("python", "train.py")


async def listed(provider: RunPodProvider, instance_id: str) -> InstanceState:
    by_id = {i.instance_id: i for i in await provider.list()}
    return by_id[instance_id].state


async def test_a_program_printing_marker_lines_itself_does_not_end_its_job(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    forged = (
        "vk-trio:exit-code=0",  # the old marker
        "vk-trio-exit nonce=0123456789abcdef code=0",  # a marker with some other nonce
        "vk-trio-exit nonce=0123456789abcdef code=" + "9" * 5000,
    )
    sim.script_workload("liar:1", Workload(lines=forged, duration=None))
    instance_id = await rent(provider, spec(image="liar:1", command=TRAIN, restart_policy="Never"))
    for _ in range(10):
        await trio.sleep(15)
        assert await listed(provider, instance_id) is InstanceState.RUNNING
    lines = [line.text async for line in provider.logs(instance_id, LogOptions())]
    assert lines == list(forged)  # the program's own output, shown as it printed it


async def test_the_wrappers_own_marker_ends_the_job_and_is_hidden_from_its_logs(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("work:1", Workload(lines=("working",), duration=20, exit_code=7))
    instance_id = await rent(provider, spec(image="work:1", command=TRAIN, restart_policy="Never"))
    args = shlex.split(sim.requests_for("createPod")[0].body["args"])
    nonce = exit_marker.nonce_in(args[2])
    assert nonce is not None and nonce not in str(sim.pod(instance_id).env)  # not the program's
    with trio.fail_after(300):
        while await listed(provider, instance_id) is not InstanceState.EXITED:
            await trio.sleep(2)
    (instance,) = await provider.list()
    assert instance.exit_code == 7
    lines = [line.text async for line in provider.logs(instance_id, LogOptions())]
    assert lines == ["working"]


async def test_every_attempt_gets_its_own_nonce(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    await rent(provider, spec(command=TRAIN, restart_policy="OnFailure"))
    await rent(provider, spec(command=TRAIN, restart_policy="OnFailure", attempt=1))
    nonces = {
        exit_marker.nonce_in(shlex.split(r.body["args"])[2]) for r in sim.requests_for("createPod")
    }
    assert len(nonces) == 2 and None not in nonces


async def test_a_429_on_the_log_stream_while_a_job_runs_is_retried_not_raised(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 11: the 429 left _read_exit's nursery as an ExceptionGroup that ``except
    CloudError`` did not catch, and the agent died."""
    sim.script_workload("work:1", Workload(lines=("working",), duration=30, exit_code=2))
    instance_id = await rent(provider, spec(image="work:1", command=TRAIN, restart_policy="Never"))
    await trio.sleep(60)
    sim.add_fault(Fault(operation="getPodLogs", status=429, retry_after=5, times=1))
    sim.add_fault(Fault(operation="getPodLogs", status=503, times=1))
    assert await listed(provider, instance_id) is InstanceState.RUNNING  # 429: not yet known
    with trio.fail_after(120):
        while await listed(provider, instance_id) is not InstanceState.EXITED:
            await trio.sleep(2)
    (instance,) = await provider.list()
    assert instance.exit_code == 2


async def test_an_always_pods_restarts_are_counted_with_their_exit_codes(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Defect 4: RunPod restarted the container four times while restartCount stayed 0."""
    sim.script_workload("flaky:1", Workload(lines=("up",), duration=30, exit_code=3))
    instance_id = await rent(provider, spec(image="flaky:1", command=TRAIN))
    body = sim.requests_for("createPod")[0].body
    assert body["env"][mapping.WRAPPER_TAG] == "Always"
    assert shlex.split(body["args"])[2].endswith("exit $code")
    seen = []
    for _ in range(70):  # a list every 2 s for 140 s: the container ran about four times
        seen.append(next(i for i in await provider.list() if i.instance_id == instance_id))
        await trio.sleep(2)
    last = seen[-1]
    assert last.restarts == sim.pod(instance_id).restarts >= 3
    assert last.last_exit is not None and last.last_exit.code == 3
    assert last.last_exit.finished_at is not None
    assert [i.restarts for i in seen] == sorted(i.restarts for i in seen)  # never goes back


async def test_restarts_between_two_lists_are_all_counted(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("crash:1", Workload(duration=2, exit_code=1))
    instance_id = await rent(provider, spec(image="crash:1", command=TRAIN))
    await trio.sleep(6.5)  # running: the agent lists every 2 s while a pod starts
    await provider.list()  # the baseline: the first run
    await trio.sleep(60)
    (instance,) = await provider.list()
    assert instance.restarts == sim.pod(instance_id).restarts > 5
    assert instance.last_exit is not None and instance.last_exit.code == 1


async def test_an_always_pod_behind_an_entrypoint_runs_unwrapped_and_still_counts_restarts(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload(
        "entry:2", Workload(entrypoint=("/init",), duration=20, exit_code=1, cmd=("serve",))
    )
    instance_id = await rent(provider, spec(image="entry:2", args=("--port", "80")))
    body = sim.requests_for("createPod")[0].body
    assert shlex.split(body["args"]) == ["--port", "80"]  # what the user wrote, as before
    assert mapping.WRAPPER_TAG not in body["env"]
    await trio.sleep(6.5)
    await provider.list()  # the baseline: the first run
    await trio.sleep(50)
    (instance,) = await provider.list()
    assert instance.restarts >= 1 and sim.pod(instance_id).restarts >= 1
    assert instance.last_exit is not None and instance.last_exit.code is None  # unknown


async def test_log_reads_are_rationed_and_wait_for_creates(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider(sim)
    sim.script_workload("long:1", Workload(lines=("epoch",), duration=None))
    for i in range(40):
        await rent(
            provider, spec(f"uid-{i}", image="long:1", command=TRAIN, restart_policy="Never")
        )
    await trio.sleep(30)
    before = len(sim.requests_for("getPodLogs"))
    await provider.list()
    assert len(sim.requests_for("getPodLogs")) - before == 16  # PER_LIST, not 40
    await trio.sleep(0.1)  # the same pods are not read again at once
    before = len(sim.requests_for("getPodLogs"))
    await provider.list()
    assert len(sim.requests_for("getPodLogs")) - before == 16  # the other ones
    provider._creating = 1  # a create in flight: only one read goes
    await trio.sleep(11)
    before = len(sim.requests_for("getPodLogs"))
    await provider.list()
    assert len(sim.requests_for("getPodLogs")) - before == 1
    await provider.aclose()


async def test_one_catalog_read_serves_a_burst_of_offer_calls(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(provider.offers, Requirements(gpu_count=1))
    assert len(sim.requests_for("listGpuTypes")) == 1
    await trio.sleep(10)
    await provider.offers(Requirements(gpu_count=1))
    assert len(sim.requests_for("listGpuTypes")) == 2  # read again once it is old


async def test_a_create_waiting_out_a_429_is_abandoned_when_the_pod_goes_away(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Defect 1: never rent for a pod deleted while its create waited for a rate-limit turn."""
    wanted = [True]
    job = spec(command=TRAIN, restart_policy="Never", still_wanted=lambda: wanted[0])
    (offer, *_) = await provider.offers(job.need)
    sim.add_fault(Fault(operation="createPod", status=429, retry_after=10, times=1))
    outcome: list[BaseException] = []

    async def create() -> None:
        with pytest.raises(CreateAborted) as raised:
            await provider.create(job, offer)
        outcome.append(raised.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create)
        await trio.sleep(5)
        wanted[0] = False  # deleted while the create waits out its Retry-After
    assert len(outcome) == 1
    assert [r.status for r in sim.requests_for("createPod")] == [429]
    assert sim.pods() == []


async def test_an_unknown_datacenter_is_an_invalid_annotation_not_a_lack_of_stock(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """Defect 3: ``runpod.io/datacenter-ids: XX-NOWHERE-1`` only said "no offer matches"."""
    need = Requirements(gpu_count=1, annotations={"runpod.io/datacenter-ids": "XX-NOWHERE-1"})
    with pytest.raises(InvalidAnnotation, match="XX-NOWHERE-1 is not a RunPod data center"):
        await provider.offers(need)
    known = Requirements(gpu_count=1, annotations={"runpod.io/datacenter-ids": "EU-RO-1"})
    assert await provider.offers(known)


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({"runpod.io/required-gpu-memory": "4096"}, ">= 4096 GB per GPU: 0"),
        ({"runpod.io/cloud-type": "COMMUNITY", "runpod.io/gpu-type-ids": "NOPE"}, "one of NOPE: 0"),
    ],
)
async def test_no_offer_says_which_constraint_ruled_every_offer_out(
    sim: RunPodSim,
    provider: RunPodProvider,
    autojump_clock: trio.testing.MockClock,
    annotations: dict[str, str],
    named: str,
) -> None:
    """Defect 3: an impossible required-gpu-memory gave only "no offer matches: 1 GPU(s)"."""
    job = spec(need=Requirements(gpu_count=1, annotations=annotations))
    with pytest.raises(NoCapacity) as raised:
        await place(provider, job)
    assert named in raised.value.message
    assert raised.value.message.startswith("no RunPod offer for 1 GPU(s)")


async def test_a_price_cap_and_empty_stock_are_named_too(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(NoCapacity, match=r"at most \$0\.01/h: 0"):
        await place(provider, spec(need=Requirements(gpu_count=1, max_price_per_hour=0.01)))
    for gpu, dc, cloud in list(sim.catalog.stock):  # sold out after our catalog read:
        sim.set_stock(gpu, dc, cloud, 0)  # the first create finds out, the rest do not ask
    with pytest.raises(NoCapacity, match="vanished"):
        await place(provider, spec(need=Requirements(gpu_count=1)))
    assert len(sim.requests_for("createPod")) == 1
    with pytest.raises(NoCapacity, match="in stock in any data center: 0"):
        await place(provider, spec(need=Requirements(gpu_count=1)))


async def test_creates_leave_the_end_of_a_window_to_the_lists(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    """A burst that spent a window's last request on a create made the status loop's list
    wait for the next window (ready to pod Ready p99 23 s in bench/cloud_latency.py)."""
    sim.set_rate_limits(minute=100, hour=10_000)
    (offer, *_) = await provider.offers(Requirements(gpu_count=1))
    picked = Candidate.parse(offer.offer_id)
    assert picked is not None
    sim.set_stock(picked.gpu_id, picked.datacenter, picked.cloud, 500)

    async def one(i: int) -> None:
        await provider.create(spec(f"uid-{i}", command=TRAIN), offer)

    async with trio.open_nursery() as nursery:
        for i in range(120):
            nursery.start_soon(one, i)
        await trio.sleep(30)  # inside the first window: the creates have stopped short of it
        assert len(await provider.list()) < 100  # and this list still gets its answer
    statuses = [r.status for r in sim.requests_for("listPods")]
    assert 429 not in statuses
    assert len([p for p in sim.pods() if p.phase]) == 120
