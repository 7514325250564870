"""CPU time from the clouds' utilisation readings: the counters the kubelet's metrics need.

Clouds report how busy an instance is *now* (Vast.ai ``cpu_util`` x cores, RunPod percentages);
the kubelet API reports CPU as a cumulative counter (``container_cpu_usage_seconds_total``,
``usageCoreNanoSeconds``) from which metrics-server computes a rate. Each provider list gives one
reading per instance; the counter grows by the mean of two consecutive readings times the time
between them (the trapezoid rule). The node's counter adds every instance's growth and never
goes down when a pod ends. Nothing is extrapolated past the last reading: a counter's timestamp
is the reading's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vk_trio.providers.base import Instance


@dataclass(frozen=True, slots=True)
class CpuCounter:
    at: datetime
    cores: float  # the last reading
    seconds: float  # core-seconds since the first reading


class UsageHistory:
    def __init__(self) -> None:
        self._cpu: dict[str, CpuCounter] = {}
        self.node_cpu_seconds = 0.0
        self.node_cpu_at: datetime | None = None

    def record(self, instances: list[Instance]) -> None:
        fresh: dict[str, CpuCounter] = {}
        for inst in instances:
            usage = inst.usage
            held = self._cpu.get(inst.instance_id)
            if usage is None or usage.cpu_cores is None or usage.cpu_cores < 0:
                if held is not None:
                    fresh[inst.instance_id] = held
                continue
            if held is None:
                fresh[inst.instance_id] = CpuCounter(usage.at, usage.cpu_cores, 0.0)
                continue
            elapsed = (usage.at - held.at).total_seconds()
            if elapsed <= 0:
                fresh[inst.instance_id] = held
                continue
            grown = (held.cores + usage.cpu_cores) / 2 * elapsed
            fresh[inst.instance_id] = CpuCounter(usage.at, usage.cpu_cores, held.seconds + grown)
            self.node_cpu_seconds += grown
            if self.node_cpu_at is None or usage.at > self.node_cpu_at:
                self.node_cpu_at = usage.at
        self._cpu = fresh

    def cpu(self, instance_id: str) -> CpuCounter | None:
        return self._cpu.get(instance_id)
