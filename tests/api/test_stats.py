"""/stats/summary and /metrics/resource from the providers' Usage: the metric names, labels and
sample timestamps metrics-server reads (checked with prometheus-client's parser), GPUs as
accelerators, and nothing where the cloud reported nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from vk_trio.api.stats import resource_metrics, summary
from vk_trio.api.view import AgentView
from vk_trio.kube.models import Pod
from vk_trio.metrics import render
from vk_trio.pods.cache import PodCache
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.retained_logs import RetainedLogs
from vk_trio.providers.base import GpuUsage, Instance, InstanceState, Usage
from vk_trio.providers.fake import FakeProvider

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def pod(name: str, uid: str) -> Pod:
    raw = {
        "metadata": {"name": name, "namespace": "team", "uid": uid, "resourceVersion": "1"},
        "spec": {"containers": [{"name": "main", "image": "x"}], "nodeName": "gpu-1"},
    }
    return msgspec.convert(raw, Pod)


def instance(uid: str, usage: Usage | None) -> Instance:
    return Instance(
        instance_id=f"i-{uid}",
        node_name="gpu-1",
        pod_uid=uid,
        state=InstanceState.RUNNING,
        started_at=T0,
        gpu_type="RTX 4090",
        usage=usage,
    )


async def agent_view() -> AgentView:
    cache = PodCache(lambda _uid: None)
    for p in (pod("vast", "u1"), pod("runpod", "u2")):
        cache.update(p)
    view = InstanceView()
    gpu = GpuUsage(index=0, model="RTX 4090", duty_cycle=85.0, memory_total_bytes=24 << 30)
    for seconds, cores in ((0, 1.0), (10, 3.0)):
        at = T0 + timedelta(seconds=seconds)
        listed = [
            instance("u1", Usage(at=at, cpu_cores=cores, memory_bytes=512 << 20)),
            instance("u2", Usage(at=at, gpus=(gpu,))),  # RunPod: GPUs only
        ]
        view.replace(listed, started_at=-1.0)
    return AgentView(
        node_name="gpu-1",
        cache=cache,
        instances=view,
        records={},
        provider=FakeProvider("gpu-1"),
        retained=RetainedLogs(),
        started_at=T0,
    )


async def test_resource_metrics_are_what_metrics_server_reads() -> None:
    text = render(resource_metrics(await agent_view()))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (cpu,) = families["container_cpu_usage_seconds"].samples
    assert cpu.labels == {"container": "main", "namespace": "team", "pod": "vast"}
    assert cpu.value == 20.0  # (1 + 3) / 2 x 10 s
    assert cpu.timestamp == (T0 + timedelta(seconds=10)).timestamp()
    (memory,) = families["container_memory_working_set_bytes"].samples
    assert memory.value == 512 << 20
    (node_cpu,) = families["node_cpu_usage_seconds"].samples
    assert node_cpu.value == 20.0
    assert families["node_memory_working_set_bytes"].samples[0].value == 512 << 20
    starts = families["container_start_time_seconds"].samples
    assert [s.labels["pod"] for s in starts] == ["vast"]  # the RunPod pod has no CPU or memory
    assert families["scrape_error"].samples[0].value == 0


async def test_the_summary_carries_gpus_as_accelerators_and_omits_what_is_unknown() -> None:
    found = summary(await agent_view())
    by_name = {p["podRef"]["name"]: p for p in found["pods"]}
    vast = by_name["vast"]["containers"][0]
    assert vast["cpu"]["usageNanoCores"] == 3_000_000_000
    assert vast["cpu"]["usageCoreNanoSeconds"] == 20_000_000_000
    assert vast["memory"]["workingSetBytes"] == 512 << 20
    runpod = by_name["runpod"]["containers"][0]
    assert "cpu" not in runpod and "memory" not in runpod
    (gpu,) = runpod["accelerators"]
    assert gpu == {
        "make": "nvidia",
        "model": "RTX 4090",
        "id": "i-u2/0",
        "memoryTotal": 24 << 30,
        "dutyCycle": 85,
    }
    assert found["node"]["memory"]["workingSetBytes"] == 512 << 20
