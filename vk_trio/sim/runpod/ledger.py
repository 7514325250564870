"""The billing ledger: what each simulated pod has cost, second by second.

The most expensive bug a GPU kubelet can have is an instance that keeps billing after its pod is
gone (the Go kubelet "deleted" pods by stopping them, which keeps billing their disk). Tests read
this ledger to prove that nothing is paid after a pod ends: every pod has at most one open
segment at a time (compute while it holds GPUs, storage while it is stopped), and terminating
closes it for good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# RunPod bills disk: $0.10 per GB-month while the pod runs, $0.20 while it is stopped
# (docs.runpod.io/pods/storage), here per hour.
RUNNING_DISK_PER_GB_HOUR = 0.10 / 730
STORAGE_PER_GB_HOUR = 0.20 / 730


@dataclass(kw_only=True)
class Segment:
    pod_id: str
    kind: str  # "compute" | "storage"
    rate_per_hour: float
    start: float
    end: float | None = None

    def cost(self, at: float) -> float:
        end = at if self.end is None else min(self.end, at)
        return max(0.0, end - self.start) * self.rate_per_hour / 3600.0


class Ledger:
    """Append-only billing segments per pod, on the simulator's clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.segments: list[Segment] = []
        self._open: dict[str, Segment] = {}

    def open(self, pod_id: str, kind: str, rate_per_hour: float, *, at: float) -> None:
        self.close(pod_id, at=at)
        segment = Segment(pod_id=pod_id, kind=kind, rate_per_hour=rate_per_hour, start=at)
        self.segments.append(segment)
        self._open[pod_id] = segment

    def close(self, pod_id: str, *, at: float) -> None:
        segment = self._open.pop(pod_id, None)
        if segment is not None:
            segment.end = at

    def cost(self, pod_id: str | None = None, *, at: float | None = None) -> float:
        """USD charged so far (to ``at``, default now), for one pod or the whole account."""
        when = self._clock() if at is None else at
        return sum(s.cost(when) for s in self.segments if pod_id is None or s.pod_id == pod_id)

    def rate(self, pod_id: str | None = None) -> float:
        """USD per hour being charged right now."""
        return sum(s.rate_per_hour for p, s in self._open.items() if pod_id is None or p == pod_id)

    def billing(self) -> list[str]:
        """Ids of the pods that are being charged right now."""
        return sorted(self._open)
