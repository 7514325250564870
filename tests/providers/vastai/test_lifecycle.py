"""An instance's life as the node agent sees it: ready with ports, real Job exit codes, failures
with Vast.ai's own message, and nothing billed once the pod's instance is deleted."""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio.testing

from tests.providers.vastai.conftest import MakeProvider, spec
from vk_trio.providers.base import Instance, InstanceSpec, InstanceState, LogOptions
from vk_trio.providers.vastai import VastProvider
from vk_trio.providers.vastai.status import ANNOTATION_PREFIX
from vk_trio.sim.vastai import VastSim, Workload


async def rent(provider: VastProvider, pod: InstanceSpec) -> Instance:
    return await provider.create(pod, (await provider.offers(pod.need))[0])


async def until(
    provider: VastProvider,
    instance_id: str,
    done: Callable[[Instance], bool],
    seconds: float = 3600,
) -> Instance:
    with trio.fail_after(seconds):
        while True:
            found = {i.instance_id: i for i in await provider.list()}.get(instance_id)
            if found is not None and done(found):
                return found
            await trio.sleep(5)


async def test_a_server_is_ready_once_running_with_its_ports_on_the_public_ip(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider()
    instance = await rent(provider, spec(image="serve:1", command=("serve",), ports=(8000, 9000)))
    ready = await until(provider, instance.instance_id, lambda i: i.ready)
    machine = sim.instance(int(instance.instance_id))
    assert machine is not None
    assert ready.state is InstanceState.RUNNING
    assert ready.public_ip == machine.offer.public_ipaddr
    assert ready.annotations[ANNOTATION_PREFIX + "port-8000-tcp"] == (
        f"{machine.offer.public_ipaddr}:{machine.offer.direct_port_start}"
    )
    assert ready.annotations[ANNOTATION_PREFIX + "machine-id"] == str(machine.offer.machine_id)
    assert ready.price_per_hour > 0
    assert machine.env == {"-p 8000:8000": "1", "-p 9000:9000": "1"}


async def test_a_job_reports_its_real_exit_code_through_the_marker(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("train:1", Workload(run_seconds=120, logs=("epoch 1", "epoch 2"), exit_code=17))
    provider = make_provider()
    job = spec(image="train:1", command=("python", "train.py"), restart_policy="OnFailure")
    instance = await rent(provider, job)
    ended = await until(provider, instance.instance_id, lambda i: i.state is InstanceState.EXITED)
    assert ended.exit_code == 17
    assert ended.started_at is not None and ended.finished_at is not None
    assert 120 <= (ended.finished_at - ended.started_at).total_seconds() < 121
    lines = [line.text async for line in provider.logs(instance.instance_id, LogOptions())]
    assert lines == ["epoch 1", "epoch 2"]  # the marker is ours, not the pod's
    machine = sim.instance(int(instance.instance_id))
    assert machine is not None and machine.notes == []  # the wrapper ran as a shell runs it


async def test_followed_logs_stream_new_lines_and_end_with_the_job(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("train:1", Workload(run_seconds=300, logs=tuple(f"step {i}" for i in range(6))))
    provider = make_provider()
    instance = await rent(
        provider, spec(image="train:1", command=("train",), restart_policy="Never")
    )
    seen: list[tuple[float, str]] = []
    with trio.fail_after(3600):
        async for line in provider.logs(instance.instance_id, LogOptions(follow=True)):
            seen.append((trio.current_time(), line.text))
    assert [text for _, text in seen] == [f"step {i}" for i in range(6)]
    assert seen[-1][0] - seen[0][0] > 200  # streamed as printed, not all at the end


async def test_a_bad_image_fails_with_vast_ais_message(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("bad:1", Workload(fault="oci_error"))
    provider = make_provider()
    instance = await rent(provider, spec(image="bad:1", command=("/app/serve",)))
    failed = await until(
        provider, instance.instance_id, lambda i: i.state is not InstanceState.PROVISIONING
    )
    assert failed.state is InstanceState.FAILED
    assert "OCI runtime create failed" in failed.message
    assert "/bin/sh" in failed.message  # the wrapper's shell is what the image lacks


async def test_a_lost_host_and_a_stuck_load_fail(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("flaky:1", Workload(fault="offline", fault_after=300))
    sim.script("slow:1", Workload(fault="stuck_loading"))
    provider = make_provider(loading_timeout=900)
    flaky = await rent(provider, spec(pod_uid="flaky", image="flaky:1"))
    slow = await rent(provider, spec(pod_uid="slow", image="slow:1"))
    lost = await until(provider, flaky.instance_id, lambda i: i.state is InstanceState.FAILED)
    assert "offline" in lost.message
    stuck = await until(provider, slow.instance_id, lambda i: i.state is InstanceState.FAILED)
    assert "loading" in stuck.message
    assert trio.current_time() >= 900


async def test_delete_leaves_nothing_billed_and_is_idempotent(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("train:1", Workload(run_seconds=60, exit_code=0))
    provider = make_provider()
    server = await rent(provider, spec(pod_uid="server", command=("serve",)))
    job = await rent(
        provider, spec(pod_uid="job", image="train:1", command=("t",), restart_policy="Never")
    )
    await until(provider, job.instance_id, lambda i: i.state is InstanceState.EXITED)
    assert sorted(sim.ledger.accruing_gpu()) == sorted(int(i.instance_id) for i in (server, job))
    for instance in (server, job):
        await provider.delete(instance.instance_id)
        await provider.delete(instance.instance_id)
    await provider.delete("12345")
    total = sim.ledger.total()
    await trio.sleep(24 * 3600)
    assert sim.ledger.accruing() == []
    assert sim.ledger.total() == total
    assert await provider.list() == []
