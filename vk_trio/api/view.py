"""What the kubelet API reads of the running agent: pods, instances, retained logs, the provider.

The API never changes any of it; it answers from the same state the pod workers keep, so a
request costs no Kubernetes call and no provider call (except a log read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from vk_trio.kube.models import Pod
from vk_trio.kube.timefmt import utcnow
from vk_trio.pods.cache import PodCache
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.record import PodRecord
from vk_trio.pods.retained_logs import RetainedLogs
from vk_trio.providers.base import Instance, InstanceState, Provider

LIVE = (InstanceState.STARTING, InstanceState.RUNNING, InstanceState.EXITED, InstanceState.FAILED)


@dataclass(kw_only=True)
class AgentView:
    node_name: str
    cache: PodCache
    instances: InstanceView
    records: Mapping[str, PodRecord]
    provider: Provider
    retained: RetainedLogs
    started_at: datetime = field(default_factory=utcnow)
    open_log_streams: int = 0  # upstream log streams open right now (tests, /metrics)

    def pod(self, namespace: str, name: str) -> Pod | None:
        for pod in self.cache:
            if pod.metadata.name == name and pod.metadata.namespace == namespace:
                return pod
        return None

    def attempt(self, pod: Pod) -> int:
        """The attempt the pod is on (its restarts), as the pod worker counts them."""
        record = self.records.get(pod.metadata.uid)
        newest = self.newest_instance(pod)
        return max(record.attempt if record else 0, newest.attempt if newest else 0)

    def newest_instance(self, pod: Pod) -> Instance | None:
        found = [
            i
            for i in self.instances.for_pod(pod.metadata.uid)
            if i.state is not InstanceState.TERMINATING
        ]
        return found[-1] if found else None

    def running(self) -> list[tuple[Pod, Instance]]:
        """Pods whose current instance runs, with it (what stats are about)."""
        out = []
        for pod in self.cache:
            inst = self.newest_instance(pod)
            if inst is not None and inst.state is InstanceState.RUNNING:
                out.append((pod, inst))
        return out
