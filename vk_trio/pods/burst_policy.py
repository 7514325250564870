"""Which pending Jobs go to the cloud, and why: the rules of seed 002, as one pure function.

A Job is *eligible* when annotated ``runpod.io/managed: "true"`` or ``vk-trio.io/managed:
"true"``; any other Job is never touched, whatever else it carries. It is *pending* when it is
not suspended (Kueue queues Jobs that way), not finished, not being deleted, and has pods the
scheduler marked ``PodScheduled=False, reason Unschedulable``; it has been pending since the
earliest such condition. Then, for each pass (``plan``):

* **follows-job**: a Job already offloaded to this node (annotation ``vk-trio.io/offloaded-to``)
  sends every new pod of it (a retry under backoffLimit, a further completion) the same way, at
  once. A Job offloaded to another virtual node is that node's to follow.
* **offload-annotation**: ``runpod.io/offload: "true"`` (or ``vk-trio.io/offload``) sends its
  pods at once, without waiting to be Unschedulable.
* **max-pending-time**: pending for ``--max-pending-time`` seconds or more (0 turns this rule
  off: seed 002's default leaves only the threshold and the annotation).
* **pending-job-threshold**: while more than ``--pending-job-threshold`` eligible Jobs are
  pending, the oldest go first. Which ones actually go depends on whether their pods fit the
  node, so this rule is a queue and a quota for the caller.

Annotation values are read like Go's strconv.ParseBool (what seed 002's users typed); any other
value is a problem reported once on the Job, and the annotation counts as absent.

PURE: no trio, no I/O. Times are the API server's (conditions) against the caller's ``now``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vk_trio.kube.models import Job, Pod
from vk_trio.kube.scheduling import UnboundPod

MANAGED = ("runpod.io/managed", "vk-trio.io/managed")
OFFLOAD = ("runpod.io/offload", "vk-trio.io/offload")
OFFLOADED_AT = "vk-trio.io/offloaded-at"
OFFLOADED_TO = "vk-trio.io/offloaded-to"
OFFLOAD_RULE = "vk-trio.io/offload-rule"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_FINISHED = frozenset({"Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"})


class Rule(enum.Enum):
    FOLLOW = "follows-job"
    ANNOTATION = "offload-annotation"
    TIME = "max-pending-time"
    THRESHOLD = "pending-job-threshold"


@dataclass(frozen=True, slots=True)
class JobView:
    """What burst keeps of a Job (the watch's objects are dropped: annotations can be big)."""

    uid: str
    namespace: str
    name: str
    managed_by: tuple[str, ...]  # the managed annotations set to true (they name the pod label)
    offload_by: tuple[str, ...]  # the offload annotations set to true
    offloaded_to: str
    suspended: bool
    finished: bool
    deleting: bool
    problems: tuple[str, ...]  # annotation values that are not booleans

    @property
    def managed(self) -> bool:
        return bool(self.managed_by)

    @property
    def offload(self) -> bool:
        return bool(self.offload_by)


def _flag(annotations: Mapping[str, str], key: str, problems: list[str]) -> bool:
    value = annotations.get(key)
    if value is None or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    problems.append(f'{key}: {value!r} is not "true" or "false"; ignored')
    return False


def job_view(job: Job) -> JobView:
    meta = job.metadata
    problems: list[str] = []
    managed_by = tuple(key for key in MANAGED if _flag(meta.annotations, key, problems))
    offload_by = tuple(key for key in OFFLOAD if _flag(meta.annotations, key, problems))
    if not any(key in meta.annotations for key in MANAGED):
        problems.clear()  # a Job that never opted in is not ours to comment on
    finished = any(c.type in _FINISHED and c.status == "True" for c in job.status.conditions)
    return JobView(
        uid=meta.uid,
        namespace=meta.namespace,
        name=meta.name,
        managed_by=managed_by,
        offload_by=offload_by,
        offloaded_to=meta.annotations.get(OFFLOADED_TO, ""),
        suspended=bool(job.spec.suspend),
        finished=finished,
        deleting=meta.deletion_timestamp is not None,
        problems=tuple(problems),
    )


def owning_job(pod: Pod) -> str | None:
    """The uid of the Job that controls ``pod``, if a Job does."""
    for owner in pod.metadata.owner_references:
        if owner.kind == "Job" and owner.controller and owner.api_version.startswith("batch/"):
            return owner.uid
    return None


def unschedulable_since(pod: Pod) -> datetime | None:
    for condition in pod.status.conditions:
        if condition.type == "PodScheduled" and condition.status == "False":
            if condition.reason != "Unschedulable":
                return None
            return condition.last_transition_time or pod.metadata.creation_timestamp
    return None


def bindable(pod: UnboundPod) -> bool:
    """An unbound pod a binding could place: not leaving, not gated, still Pending."""
    return (
        not pod.spec.node_name
        and pod.metadata.deletion_timestamp is None
        and not pod.spec.scheduling_gates
        and pod.status.phase in ("", "Pending")
    )


@dataclass(frozen=True, slots=True)
class Decision:
    job: JobView
    pods: tuple[UnboundPod, ...]
    rule: Rule
    why: str  # for the Events: the rule in the user's words
    waited: float | None  # seconds pending, when the Job was pending


@dataclass(frozen=True, slots=True)
class Plan:
    now: tuple[Decision, ...]  # offload these
    by_threshold: tuple[Decision, ...]  # oldest first: offload until ``quota`` Jobs went
    quota: int
    next_check: float | None  # seconds until the time rule fires for a Job, if it will


def plan(
    jobs: Mapping[str, JobView],
    pods_by_job: Mapping[str, Iterable[UnboundPod]],
    *,
    node: str,
    now: datetime,
    threshold: int,
    max_pending: float,
) -> Plan:
    decided: list[Decision] = []
    pending: list[tuple[datetime, JobView, tuple[UnboundPod, ...]]] = []
    for uid, candidates in pods_by_job.items():
        job = jobs.get(uid)
        pods = tuple(sorted((p for p in candidates if bindable(p)), key=_age))
        if job is None or not pods or not job.managed:
            continue
        if job.suspended or job.finished or job.deleting:
            continue
        if job.offloaded_to:
            if job.offloaded_to == node:
                why = f"Job {job.name} was offloaded to {node}; its pods follow it"
                decided.append(Decision(job, pods, Rule.FOLLOW, why, None))
            continue
        if job.offload:
            why = f'the Job is annotated {job.offload_by[0]}: "true"'
            decided.append(Decision(job, pods, Rule.ANNOTATION, why, None))
            continue
        marked = [t for t in map(unschedulable_since, pods) if t is not None]
        if marked:
            pending.append((min(marked), job, pods))
    pending.sort(key=lambda item: (item[0], item[1].namespace, item[1].name))
    waiting: list[tuple[Decision, float]] = []
    next_check: float | None = None
    for since, job, pods in pending:
        waited = max(0.0, (now - since).total_seconds())
        if max_pending > 0 and waited >= max_pending:
            why = f"pending {_secs(waited)}, --max-pending-time is {_secs(max_pending)}"
            decided.append(Decision(job, pods, Rule.TIME, why, waited))
            continue
        if max_pending > 0:
            left = max_pending - waited
            next_check = left if next_check is None else min(next_check, left)
        waiting.append((Decision(job, pods, Rule.THRESHOLD, "", waited), waited))
    quota = max(0, len(waiting) - threshold)
    count = len(waiting)
    by_threshold = tuple(
        Decision(
            d.job,
            d.pods,
            Rule.THRESHOLD,
            f"{count} managed Jobs pending, --pending-job-threshold is {threshold}; oldest "
            f"first (pending {_secs(waited)})",
            waited,
        )
        for d, waited in waiting
    )
    return Plan(tuple(decided), by_threshold if quota else (), quota, next_check)


def _age(pod: Pod) -> tuple[str, str]:
    created = pod.metadata.creation_timestamp
    return (created.isoformat() if created else "", pod.metadata.name)


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"


def pods_of_jobs(pods: Sequence[UnboundPod]) -> dict[str, list[UnboundPod]]:
    grouped: dict[str, list[UnboundPod]] = {}
    for pod in pods:
        uid = owning_job(pod)
        if uid is not None:
            grouped.setdefault(uid, []).append(pod)
    return grouped
