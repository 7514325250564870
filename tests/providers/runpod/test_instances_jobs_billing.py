"""What list() reports (states, readiness, annotations), Job exit codes through the marker,
logs, and that delete leaves nothing billed."""

from __future__ import annotations

import shlex

import pytest
import trio
import trio.testing

from tests.providers.runpod.conftest import NODE, make_provider
from tests.providers.runpod.test_requests_and_retries import rent, spec
from vk_trio.providers.base import (
    InstanceState,
    LogOptions,
    LogsUnavailable,
    Port,
    Requirements,
)
from vk_trio.providers.runpod import RunPodProvider, mapping
from vk_trio.providers.runpod.models import Pod, PodGpu, PodRuntime, RuntimePort
from vk_trio.sim.runpod import Phase, RunPodSim, Timings, Workload

TRAIN = ("python", "train.py")


async def states_until_running(provider: RunPodProvider, instance_id: str) -> list[str]:
    seen: list[str] = []
    with trio.fail_after(120):
        while not seen or seen[-1] != "Running":
            (instance,) = [i for i in await provider.list() if i.instance_id == instance_id]
            if not seen or seen[-1] != instance.state.value:
                seen.append(instance.state.value)
            await trio.sleep(0.5)
    return seen


async def test_running_before_runtime_is_reported_as_starting_and_ready_needs_tcp_ports(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.timings = Timings(provisioning=2, starting=3, ports_delay=5, running_early=True)
    provider = make_provider(sim)
    try:
        ports = (Port(number=22), Port(number=8888))
        instance_id = await rent(provider, spec(ports=ports))
        assert await states_until_running(provider, instance_id) == ["Starting", "Running"]
        (running,) = await provider.list()
    finally:
        await provider.aclose()
    assert running.ready
    assert running.public_ip.startswith("203.0.113.")
    assert running.annotations["runpod.io/pod-id"] == instance_id
    assert running.annotations["runpod.io/proxy-url-8888"] == (
        f"https://{instance_id}-8888.proxy.runpod.net"
    )
    # the GPU's $0.24/h and the default 20 GB container disk's $0.10 per GB-month
    assert running.annotations["runpod.io/cost-per-hr"] == "0.2427"
    assert running.location and running.gpu_type and running.price_per_hour == 0.2427


def test_a_running_pod_with_unmapped_tcp_ports_is_not_ready_but_http_only_is() -> None:
    def pod(ports: list[str], runtime: list[RuntimePort]) -> Pod:
        return Pod(
            id="abc",
            name=mapping.instance_name(NODE, "uid.0"),
            status="RUNNING",
            ports=ports,
            gpu=PodGpu(id="G", count=1),
            runtime=PodRuntime(uptime=3, ports=runtime),
        )

    waiting = mapping.to_instance(
        pod(["22/tcp"], [RuntimePort(private=22, public=None, type="tcp")]), node_name=NODE
    )
    http = mapping.to_instance(
        pod(["8888/http"], [RuntimePort(private=8888, type="http")]), node_name=NODE
    )
    assert waiting is not None and http is not None
    assert (waiting.state, waiting.ready) == (InstanceState.RUNNING, False)
    assert (http.state, http.ready) == (InstanceState.RUNNING, True)


@pytest.mark.parametrize(
    ("name", "node", "owner"),
    [
        ("vk-trio.n1.uid.0", "n1", ("uid", 0)),
        ("vk-trio.a.b.uid.3", "a.b", ("uid", 3)),
        ("vk-trio.a.b.uid.3", "a", None),  # node "a" does not own node "a.b"'s pods
        ("vk-trio.n1.uid", "n1", None),
        ("my-training-pod", "n1", None),
    ],
)
def test_ownership_is_read_from_the_name(
    name: str, node: str, owner: tuple[str, int] | None
) -> None:
    assert mapping.parse_name(name, node) == owner


async def test_a_job_reports_its_real_exit_code_through_the_marker(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload(
        "trainer:2", Workload(lines=("epoch 1", "epoch 2"), duration=40, exit_code=3)
    )
    job = spec(image="trainer:2", command=TRAIN, restart_policy="Never")
    instance_id = await rent(provider, job)
    body = sim.requests_for("createPod")[0].body
    assert shlex.split(body["args"])[-2:] == list(TRAIN)
    with trio.fail_after(600):
        while True:
            (instance,) = await provider.list()
            if instance.state is InstanceState.EXITED:
                break
            await trio.sleep(1)
    assert instance.exit_code == 3
    assert instance.started_at is not None and instance.finished_at is not None
    assert instance.finished_at >= instance.started_at
    assert sim.pod(instance_id).restarts == 0  # the wrapper idles instead of exiting
    lines = [line.text async for line in provider.logs(instance_id, LogOptions())]
    assert lines == ["epoch 1", "epoch 2"]  # the marker is ours, not the user's
    followed = [line.text async for line in provider.logs(instance_id, LogOptions(follow=True))]
    assert followed == ["epoch 1", "epoch 2"]
    await provider.delete(instance_id)
    assert sim.billing() == []


async def test_a_successful_job_exits_zero_and_a_service_never_exits(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("quick:1", Workload(duration=5, exit_code=0))
    job_id = await rent(
        provider, spec("uid-job", image="quick:1", args=("--fast",), restart_policy="OnFailure")
    )
    svc_id = await rent(provider, spec("uid-svc", image="quick:1", command=TRAIN))
    await trio.sleep(120)
    by_id = {i.instance_id: i for i in await provider.list()}
    assert (by_id[job_id].state, by_id[job_id].exit_code) == (InstanceState.EXITED, 0)
    assert by_id[svc_id].state is InstanceState.RUNNING  # RunPod restarted it (as it does)
    assert sim.pod(svc_id).restarts > 0


async def test_an_image_entrypoint_defeats_the_wrapper_and_the_job_never_exits(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("entry:1", Workload(duration=5, exit_code=1, entrypoint=("/init",)))
    await rent(provider, spec(image="entry:1", command=TRAIN, restart_policy="Never"))
    await trio.sleep(120)
    (instance,) = await provider.list()
    assert instance.state is InstanceState.RUNNING  # the documented limitation


async def test_delete_terminates_so_nothing_is_billed_afterwards(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    instance_id = await rent(provider, spec())
    await trio.sleep(600)
    await provider.delete(instance_id)
    spent = sim.cost(instance_id)
    assert spent > 0
    await provider.delete(instance_id)  # already gone: success
    await trio.sleep(3600)
    assert sim.cost(instance_id) == spent
    assert sim.billing() == []
    assert sim.pod(instance_id).phase is Phase.TERMINATED
    assert not sim.requests_for("podAction")  # never a mere stop
    assert await provider.list() == []


async def test_list_ignores_foreign_pods_and_other_nodes(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.create_pod({"name": "hand-made", "image": "x", "gpu": {"id": "NVIDIA L40S"}})
    other = make_provider(sim, "rp-node.b")
    try:
        theirs = await rent(other, spec(node_name="rp-node.b"))
        mine = await rent(provider, spec())
        assert [i.instance_id for i in await provider.list()] == [mine]
        assert [i.instance_id for i in await other.list()] == [theirs]
    finally:
        await other.aclose()


async def test_logs_honour_tail_and_limit_bytes_and_unknown_pods_are_unavailable(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("talk:1", Workload(lines=tuple(f"l{i}" for i in range(8))))
    instance_id = await rent(provider, spec(image="talk:1"))
    await trio.sleep(60)
    tail = [line.text async for line in provider.logs(instance_id, LogOptions(tail_lines=3))]
    limited = [line async for line in provider.logs(instance_id, LogOptions(limit_bytes=7))]
    assert tail == ["l5", "l6", "l7"]
    assert [line.text for line in limited] == ["l0", "l1"]
    assert limited[0].timestamp is not None
    with pytest.raises(LogsUnavailable):
        _ = [line async for line in provider.logs("nope", LogOptions())]


async def test_disk_template_and_cuda_annotations_reach_the_create_body(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    from vk_trio.sim.runpod import Template

    sim.add_template(Template(id="tpl", image="from/template:1"))
    annotations = {
        "runpod.io/templateId": "tpl",
        "runpod.io/container-disk-gb": "77",
        "runpod.io/allowed-cuda-versions": "12.8",
        "runpod.io/ports": "8080/tcp",
    }
    await rent(
        provider, spec(ports=(Port(number=8080),), need=Requirements(annotations=annotations))
    )
    body = sim.requests_for("createPod")[0].body
    assert (body["templateId"], body["disk"], body["ports"]) == ("tpl", 77, ["8080/tcp"])
    assert body["gpu"]["allowedCudaVersions"] == ["12.8"]
    assert body["env"]["VK_TRIO_NODE"] == NODE


async def test_list_reads_a_chatty_jobs_log_backlog_without_waiting_for_the_job_to_end(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    chatter = tuple(f"step {i}" for i in range(1000))
    sim.script_workload("chatty:1", Workload(lines=chatter, line_interval=0.5, duration=500))
    instance_id = await rent(
        provider, spec(image="chatty:1", command=TRAIN, restart_policy="Never")
    )
    await trio.sleep(60)
    started = trio.current_time()
    (instance,) = await provider.list()
    assert instance.state is InstanceState.RUNNING
    assert trio.current_time() - started < 5  # not the 440 s the Job has left
    started = trio.current_time()
    lines = [line.text async for line in provider.logs(instance_id, LogOptions(tail_lines=5))]
    assert len(lines) == 5 and trio.current_time() - started < 5
