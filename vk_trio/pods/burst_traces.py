"""What burst leaves for the user to see, written once: Events, the Job's and the pod's marks.

pods/burst.py decides and binds; this module writes the traces of those decisions, each at most
once: an Event per (object, reason and message) — a pass that changes nothing writes nothing —,
the Job annotations ``vk-trio.io/offloaded-{at,to}`` and ``offload-rule`` once per Job, and the
managed label on a pod whose Binding could not carry it (API servers before 1.35), through
``pods/status``, which the agent may patch for the pods bound to its node anyway.

``complete`` is the crash recovery: a pod bound here with burst's annotations (set atomically by
its Binding) whose Job lacks ``offloaded-to`` was offloaded by a term that died before the Job
patch; that patch is made now, so later pods of the Job still follow it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import trio

from vk_trio.errors import KubeError
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import NORMAL, WARNING, EventRecorder, pod_reference
from vk_trio.kube.models import ObjectReference, Pod
from vk_trio.kube.resources import JOBS, PODS
from vk_trio.kube.timefmt import kube_time, utcnow
from vk_trio.logs import get_logger
from vk_trio.pacing import TokenBucket
from vk_trio.pods.burst_fit import Misfit
from vk_trio.pods.burst_policy import (
    OFFLOAD_RULE,
    OFFLOADED_AT,
    OFFLOADED_TO,
    Decision,
    JobView,
    owning_job,
)
from vk_trio.pods.cache import PodCache

OFFLOADED, NOT_OFFLOADED = "Offloaded", "NotOffloaded"
_log = get_logger("vk_trio.pods.burst")


@dataclass
class BurstStats:
    passes: int = 0
    bound: int = 0  # Bindings that bound a pod
    lost_races: int = 0  # 409: bound by someone else first (or recreated)
    gone: int = 0
    not_offloaded: int = 0  # pods that could not go, by (pod, reason)
    job_annotations: int = 0
    label_patches: int = 0
    errors: int = 0
    writes: dict[str, int] = field(default_factory=dict)  # by kind: binding, job, label, event

    def wrote(self, kind: str, count: int = 1) -> None:
        self.writes[kind] = self.writes.get(kind, 0) + count


def job_reference(job: JobView) -> ObjectReference:
    return ObjectReference(
        api_version="batch/v1", kind="Job", name=job.name, namespace=job.namespace, uid=job.uid
    )


class Traces:
    def __init__(
        self,
        *,
        client: KubeClient,
        events: EventRecorder,
        cache: PodCache,
        limiter: TokenBucket,
        node_name: str,
        stats: BurstStats,
        jobs: KubeClient | None = None,
    ) -> None:
        self.client = client  # labels of pods bound here (their status subresource)
        self.jobs = jobs or client  # Job annotations: the ServiceAccount with a node identity
        self.events = events
        self.cache = cache
        self.limiter = limiter
        self.node_name = node_name
        self.stats = stats
        self._said: set[tuple[str, str]] = set()  # (object uid, message) of Events written
        self._job_traced: set[str] = set()  # Jobs whose annotation we wrote (or are writing)
        self._labelled: set[str] = set()

    def forget(
        self, *, alive: Collection[str], jobs: Collection[str], cached: Collection[str]
    ) -> None:
        """Drop the memories of objects that are gone (bounded memory)."""
        self._said = {key for key in self._said if key[0] in alive}
        self._job_traced &= set(jobs)
        self._labelled &= set(cached)

    async def say(self, ref: ObjectReference, kind: str, reason: str, message: str) -> None:
        """An Event, once per object and message."""
        key = (ref.uid, f"{reason}: {message}")
        if key in self._said:
            return
        self._said.add(key)
        self.stats.wrote("event")
        await self.events.record(ref, type=kind, reason=reason, message=message)

    async def offloaded(self, decision: Decision, pod: Pod, waited: str) -> None:
        node, why = self.node_name, decision.why
        await self.say(
            pod_reference(pod),
            NORMAL,
            OFFLOADED,
            f"bound to the virtual node {node}{waited}: {why}",
        )
        await self.say(
            job_reference(decision.job),
            NORMAL,
            OFFLOADED,
            f"pod {pod.metadata.name} offloaded to the virtual node {node}{waited}: {why}",
        )

    async def misfit(self, decision: Decision, pod: Pod, why: Misfit) -> None:
        kind = WARNING if why.lasting else NORMAL
        message = f"stays local: {why.message}"  # not the rule: it may change between passes
        if (pod.metadata.uid, f"{NOT_OFFLOADED}: {message}") not in self._said:
            self.stats.not_offloaded += 1
        await self.say(pod_reference(pod), kind, NOT_OFFLOADED, message)
        await self.say(
            job_reference(decision.job),
            kind,
            NOT_OFFLOADED,
            f"pod {pod.metadata.name} stays local: {why.message}",
        )

    async def job_problems(self, jobs: Collection[JobView]) -> None:
        for job in jobs:
            for problem in job.problems:
                await self.say(job_reference(job), WARNING, "InvalidAnnotation", problem)

    async def annotate_job(self, job: JobView, rule: str) -> bool:
        """Mark the Job as offloaded here, once; True when this call wrote it."""
        if job.uid in self._job_traced:
            return False
        self._job_traced.add(job.uid)
        annotations = {
            OFFLOADED_AT: kube_time(utcnow()),
            OFFLOADED_TO: self.node_name,
            OFFLOAD_RULE: rule,
        }
        try:
            self.stats.wrote("job")
            await self.jobs.patch(
                JOBS,
                job.name,
                {"metadata": {"annotations": annotations}},
                namespace=job.namespace,
                limiter=self.limiter,
            )
        except KubeError as exc:
            self._job_traced.discard(job.uid)  # the next pass tries again
            self.stats.errors += 1
            _log.warning("burst: annotating Job %s/%s failed: %s", job.namespace, job.name, exc)
            return False
        self.stats.job_annotations += 1
        return True

    async def complete(
        self,
        bound_here: list[Pod],
        *,
        jobs: Mapping[str, JobView],
        ours: Collection[str],
        annotated: Callable[[str], None],
    ) -> None:
        """What a crash (or a pre-1.35 API server) left undone for the pods bound here.

        ``ours``: pods this term bound (their Job is annotated by the pass that bound them);
        ``annotated(job uid)`` is told of every Job annotation written.
        """

        async def annotate(job: JobView, rule: str) -> None:
            if await self.annotate_job(job, rule):
                annotated(job.uid)

        async with trio.open_nursery() as nursery:
            for pod in bound_here:
                rule = pod.metadata.annotations.get(OFFLOAD_RULE)
                if OFFLOADED_AT not in pod.metadata.annotations or rule is None:
                    continue
                uid = owning_job(pod)
                job = jobs.get(uid) if uid is not None else None
                if job is None or not job.managed:
                    continue
                if not job.offloaded_to and job.uid not in self._job_traced:
                    if pod.metadata.uid not in ours:
                        await self.say(
                            job_reference(job),
                            NORMAL,
                            OFFLOADED,
                            f"pod {pod.metadata.name} offloaded to the virtual node "
                            f"{self.node_name} ({rule})",
                        )
                    nursery.start_soon(annotate, job, rule)
                labels = pod.metadata.labels
                missing = {k: "true" for k in job.managed_by if labels.get(k) != "true"}
                if missing and pod.metadata.uid not in self._labelled:
                    self._labelled.add(pod.metadata.uid)
                    nursery.start_soon(self._label, pod, missing)

    async def _label(self, pod: Pod, labels: dict[str, str]) -> None:
        meta = pod.metadata
        try:
            self.stats.wrote("label")
            patched: Pod = await self.client.patch(
                PODS,
                meta.name,
                {"metadata": {"labels": labels}},
                namespace=meta.namespace,
                subresource="status",
                limiter=self.limiter,
            )
        except KubeError as exc:
            self._labelled.discard(meta.uid)
            self.stats.errors += 1
            _log.warning("burst: labelling %s/%s failed: %s", meta.namespace, meta.name, exc)
            return
        self.stats.label_patches += 1
        self.cache.update(patched)
