"""``/stats/summary`` and ``/metrics/resource``: the node's and its pods' usage, in the kubelet's
formats, from what the clouds report.

metrics-server (>= 0.6) scrapes ``/metrics/resource`` (Prometheus text with sample timestamps:
``node_cpu_usage_seconds_total``, ``node_memory_working_set_bytes``,
``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``,
``container_start_time_seconds``, the pod sums, ``scrape_error``); older tools read
``/stats/summary`` (statsapi v1alpha1 JSON), which also carries GPUs as the kubelet's
``accelerators``. A number the cloud does not report is left out, never estimated: a RunPod GPU
pod reports CPU and memory only as percentages of an allocation its API does not state, so it has
GPU figures but no CPU or memory, and ``kubectl top`` does not list it. The node's figures are
the sums of what its instances report (each instance is a machine of its own; the node is the
agent's view of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vk_trio.api.view import AgentView
from vk_trio.kube.models import Pod
from vk_trio.kube.timefmt import kube_time
from vk_trio.metrics import Family
from vk_trio.pods.lifecycle import container_name
from vk_trio.pods.usage import CpuCounter
from vk_trio.providers.base import Instance

NANO = 1_000_000_000


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _cpu_json(counter: CpuCounter | None) -> dict[str, Any] | None:
    if counter is None:
        return None
    return {
        "time": kube_time(counter.at),
        "usageNanoCores": round(counter.cores * NANO),
        "usageCoreNanoSeconds": round(counter.seconds * NANO),
    }


def _container_stats(pod: Pod, inst: Instance, counter: CpuCounter | None) -> dict[str, Any]:
    started = inst.started_at or inst.created_at
    stats: dict[str, Any] = {"name": container_name(pod)}
    if started is not None:
        stats["startTime"] = kube_time(started)
    cpu = _cpu_json(counter)
    if cpu is not None:
        stats["cpu"] = cpu
    usage = inst.usage
    if usage is not None and usage.memory_bytes is not None:
        stats["memory"] = {
            "time": kube_time(usage.at),
            "workingSetBytes": usage.memory_bytes,
            "usageBytes": usage.memory_bytes,
        }
    accelerators = []
    for gpu in usage.gpus if usage is not None else ():
        entry: dict[str, Any] = {"make": "nvidia", "model": gpu.model or inst.gpu_type}
        entry["id"] = f"{inst.instance_id}/{gpu.index}"
        if gpu.memory_total_bytes is not None:
            entry["memoryTotal"] = gpu.memory_total_bytes
        if gpu.memory_used_bytes is not None:
            entry["memoryUsed"] = gpu.memory_used_bytes
        if gpu.duty_cycle is not None:
            entry["dutyCycle"] = round(gpu.duty_cycle)
        accelerators.append(entry)
    if accelerators:
        stats["accelerators"] = accelerators
    return stats


def summary(agent: AgentView) -> dict[str, Any]:
    """The statsapi v1alpha1 Summary."""
    pods = []
    memory_total, memory_at = 0, None
    for pod, inst in agent.running():
        counter = agent.instances.usage.cpu(inst.instance_id)
        container = _container_stats(pod, inst, counter)
        entry: dict[str, Any] = {
            "podRef": {
                "name": pod.metadata.name,
                "namespace": pod.metadata.namespace,
                "uid": pod.metadata.uid,
            },
            "containers": [container],
        }
        if "startTime" in container:
            entry["startTime"] = container["startTime"]
        for key in ("cpu", "memory"):
            if key in container:
                entry[key] = container[key]
        if inst.usage is not None and inst.usage.memory_bytes is not None:
            memory_total += inst.usage.memory_bytes
            memory_at = max(memory_at or inst.usage.at, inst.usage.at)
        pods.append(entry)
    node: dict[str, Any] = {
        "nodeName": agent.node_name,
        "startTime": kube_time(agent.started_at),
    }
    history = agent.instances.usage
    if history.node_cpu_at is not None:
        node["cpu"] = {
            "time": kube_time(history.node_cpu_at),
            "usageCoreNanoSeconds": round(history.node_cpu_seconds * NANO),
        }
    if memory_at is not None:
        node["memory"] = {
            "time": kube_time(memory_at),
            "workingSetBytes": memory_total,
            "usageBytes": memory_total,
        }
    return {"node": node, "pods": pods}


def resource_metrics(agent: AgentView) -> Iterable[Family]:
    """The families of ``/metrics/resource``, with sample timestamps in milliseconds."""
    node_cpu = Family(
        "node_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    )
    node_memory = Family(
        "node_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the node in bytes",
    )
    container_cpu = Family(
        "container_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    )
    container_memory = Family(
        "container_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the container in bytes",
    )
    container_start = Family(
        "container_start_time_seconds",
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    )
    pod_cpu = Family(
        "pod_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    )
    pod_memory = Family(
        "pod_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the pod in bytes",
    )
    memory_total, memory_at = 0, None
    for pod, inst in agent.running():
        labels = {
            "container": container_name(pod),
            "namespace": pod.metadata.namespace,
            "pod": pod.metadata.name,
        }
        pod_labels = {"namespace": pod.metadata.namespace, "pod": pod.metadata.name}
        counter = agent.instances.usage.cpu(inst.instance_id)
        if counter is not None:
            stamp = _ms(counter.at)
            container_cpu.add(counter.seconds, labels, timestamp_ms=stamp)
            pod_cpu.add(counter.seconds, pod_labels, timestamp_ms=stamp)
        usage = inst.usage
        if usage is not None and usage.memory_bytes is not None:
            stamp = _ms(usage.at)
            container_memory.add(usage.memory_bytes, labels, timestamp_ms=stamp)
            pod_memory.add(usage.memory_bytes, pod_labels, timestamp_ms=stamp)
            memory_total += usage.memory_bytes
            memory_at = max(memory_at or usage.at, usage.at)
        started = inst.started_at or inst.created_at
        measured = counter is not None or (usage is not None and usage.memory_bytes is not None)
        if started is not None and measured:
            container_start.add(started.timestamp(), labels, timestamp_ms=_ms(started))
    history = agent.instances.usage
    if history.node_cpu_at is not None:
        node_cpu.add(history.node_cpu_seconds, timestamp_ms=_ms(history.node_cpu_at))
    if memory_at is not None:
        node_memory.add(memory_total, timestamp_ms=_ms(memory_at))
    scrape_error = Family(
        "scrape_error", "gauge", "1 if there was an error while getting container metrics"
    ).add(0)
    return [
        container_cpu,
        container_memory,
        container_start,
        node_cpu,
        node_memory,
        pod_cpu,
        pod_memory,
        scrape_error,
    ]
