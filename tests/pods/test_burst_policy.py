"""burst_policy: which pending managed Jobs go to the cloud, in which order, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from vk_trio.kube.models import Job
from vk_trio.kube.scheduling import UnboundPod
from vk_trio.pods.burst_policy import JobView, Plan, Rule, job_view, plan, pods_of_jobs

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MANAGED = {"runpod.io/managed": "true"}


def job(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> JobView:
    raw = {
        "metadata": {"name": name, "namespace": "ns", "uid": f"job-{name}"},
        "spec": spec,
        "status": spec.pop("status", {}),
    }
    raw["metadata"]["annotations"] = MANAGED if annotations is None else annotations
    return job_view(msgspec.convert(raw, Job))


def pod(job_name: str, *, pending_for: float | None, index: int = 0, **extra: Any) -> UnboundPod:
    conditions = []
    if pending_for is not None:
        since = NOW - timedelta(seconds=pending_for)
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "lastTransitionTime": since.isoformat(),
            }
        )
    raw = {
        "metadata": {
            "name": f"{job_name}-{index}",
            "namespace": "ns",
            "uid": f"pod-{job_name}-{index}",
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job_name,
                    "uid": f"job-{job_name}",
                    "controller": True,
                }
            ],
            **extra.pop("metadata", {}),
        },
        "spec": {"containers": [{"name": "c"}], **extra.pop("spec", {})},
        "status": {"phase": "Pending", "conditions": conditions},
    }
    return msgspec.convert(raw, UnboundPod)


def decide(
    jobs: list[JobView], pods: list[UnboundPod], *, threshold: int = 1, max_pending: float = 0
) -> Plan:
    return plan(
        {j.uid: j for j in jobs},
        pods_of_jobs(pods),
        node="vk",
        now=NOW,
        threshold=threshold,
        max_pending=max_pending,
    )


def names(decisions: Any) -> list[str]:
    return [d.job.name for d in decisions]


def test_threshold_one_with_three_pending_offers_the_oldest_two() -> None:
    jobs = [job("a"), job("b"), job("c")]
    pods = [pod("a", pending_for=30), pod("b", pending_for=50), pod("c", pending_for=10)]
    chosen = decide(jobs, pods, threshold=1)
    assert chosen.now == ()
    assert names(chosen.by_threshold) == ["b", "a", "c"] and chosen.quota == 2
    assert chosen.by_threshold[0].rule is Rule.THRESHOLD
    assert "3 managed Jobs pending, --pending-job-threshold is 1" in chosen.by_threshold[0].why


def test_at_or_under_the_threshold_nothing_goes_and_zero_sends_everything() -> None:
    one = decide([job("a")], [pod("a", pending_for=99)], threshold=1)
    assert one.quota == 0 and one.by_threshold == () and one.now == ()
    everything = decide([job("a")], [pod("a", pending_for=0)], threshold=0)
    assert everything.quota == 1


def test_max_pending_time_offloads_a_job_pending_that_long_and_says_when_to_look_again() -> None:
    chosen = decide(
        [job("old"), job("young")],
        [pod("old", pending_for=31), pod("young", pending_for=5)],
        threshold=5,
        max_pending=30,
    )
    assert names(chosen.now) == ["old"] and chosen.now[0].rule is Rule.TIME
    assert chosen.now[0].why == "pending 31s, --max-pending-time is 30s"
    assert chosen.next_check == 25
    off = decide([job("old")], [pod("old", pending_for=3600)], threshold=5, max_pending=0)
    assert off.now == () and off.next_check is None


def test_offload_annotation_goes_at_once_even_before_the_scheduler_gives_up() -> None:
    forced = job("f", {"runpod.io/managed": "true", "runpod.io/offload": "true"})
    chosen = decide([forced], [pod("f", pending_for=None)], threshold=9)
    assert names(chosen.now) == ["f"] and chosen.now[0].rule is Rule.ANNOTATION
    assert chosen.now[0].why == 'the Job is annotated runpod.io/offload: "true"'
    neutral = job("n", {"vk-trio.io/managed": "True", "vk-trio.io/offload": "1"})
    assert decide([neutral], [pod("n", pending_for=None)]).now[0].rule is Rule.ANNOTATION
    assert neutral.managed_by == ("vk-trio.io/managed",)


def test_unmanaged_jobs_are_never_touched_whatever_they_carry() -> None:
    stranger = job("s", {"runpod.io/offload": "true"})
    chosen = decide([stranger], [pod("s", pending_for=999)], threshold=0, max_pending=1)
    assert chosen == Plan((), (), 0, None)
    assert stranger.problems == ()


def test_suspended_finished_and_deleting_jobs_are_not_pending() -> None:
    suspended = job("s", suspend=True)
    done = job("d", status={"conditions": [{"type": "Complete", "status": "True"}]})
    jobs = [suspended, done]
    chosen = decide(jobs, [pod("s", pending_for=99), pod("d", pending_for=99)], threshold=0)
    assert chosen.by_threshold == () and chosen.now == ()


def test_later_pods_of_an_offloaded_job_follow_it_to_its_node_only() -> None:
    ours = job("o", {**MANAGED, "vk-trio.io/offloaded-to": "vk"})
    theirs = job("t", {**MANAGED, "vk-trio.io/offloaded-to": "other-node"})
    chosen = decide(
        [ours, theirs], [pod("o", pending_for=None), pod("t", pending_for=5)], threshold=0
    )
    assert names(chosen.now) == ["o"] and chosen.now[0].rule is Rule.FOLLOW
    assert chosen.by_threshold == ()


def test_gated_deleting_and_foreign_pods_are_not_candidates() -> None:
    gated = pod("a", pending_for=9, spec={"schedulingGates": [{"name": "kueue"}]})
    leaving = pod("a", pending_for=9, index=1, metadata={"deletionTimestamp": NOW.isoformat()})
    chosen = decide([job("a")], [gated, leaving], threshold=0)
    assert chosen.by_threshold == ()
    orphan = msgspec.convert({"metadata": {"uid": "x"}}, UnboundPod)
    assert pods_of_jobs([orphan]) == {}


def test_a_bad_annotation_value_is_a_problem_and_counts_as_absent() -> None:
    bad = job("b", {"runpod.io/managed": "yes", "runpod.io/offload": "maybe"})
    assert not bad.managed and not bad.offload
    assert bad.problems == (
        'runpod.io/managed: \'yes\' is not "true" or "false"; ignored',
        'runpod.io/offload: \'maybe\' is not "true" or "false"; ignored',
    )


def test_pending_time_runs_from_the_earliest_unschedulable_pod() -> None:
    pods = [
        pod("a", pending_for=5),
        pod("a", pending_for=40, index=1),
        pod("a", pending_for=None, index=2),
    ]
    chosen = decide([job("a")], pods, threshold=9, max_pending=30)
    assert names(chosen.now) == ["a"] and len(chosen.now[0].pods) == 3
