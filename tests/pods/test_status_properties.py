"""pods/status.py under Hypothesis: any record, any history, the status stays one Kubernetes takes.

A pod's status is driven through a sequence of arbitrary records, the way the reconciler would:
compute, patch, apply the patch as the API server does (RFC 7386 merge patch), repeat. Every
step must keep the kubelet's invariants and pass the API server's status validation rules that
a careless status breaks (terminal phases, terminated containers of Never pods, podIP/podIPs).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.pods.test_status import make_instance, make_pod
from vk_trio.kube.models import Pod, PodCondition, PodStatus
from vk_trio.pods.record import PodRecord, Terminated, Waiting
from vk_trio.pods.status import pod_status, status_patch
from vk_trio.providers.base import InstanceState

GATES = ("example.com/lb", "example.com/warm")
FOREIGN = ("DisruptionTarget", *GATES)


def rarely(strategy: st.SearchStrategy[Any], one_in: int) -> st.SearchStrategy[Any]:
    """None most of the time: a terminal record ends a history, so it should come late."""
    return st.integers(1, one_in).flatmap(lambda n: strategy if n == 1 else st.none())


times = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)
server_times = times.map(lambda t: t.replace(microsecond=0))  # metav1.Time has seconds
short_text = st.text(alphabet="abc xyz:", max_size=8)
waitings = st.none() | st.builds(
    Waiting,
    reason=st.sampled_from(["ContainerCreating", "CrashLoopBackOff", "InvalidAnnotation"]),
    message=short_text,
)
terminations = st.builds(
    Terminated,
    exit_code=st.integers(0, 255),
    reason=st.sampled_from(["", "Completed", "Error", "OOMKilled", "InstanceLost"]),
    message=short_text,
    started_at=st.none() | times,
    finished_at=st.none() | times,
    instance_id=st.sampled_from(["", "i-1", "i-2"]),
)
instances = st.none() | st.builds(
    make_instance,
    st.sampled_from([*InstanceState, InstanceState.RUNNING, InstanceState.RUNNING]),
    ready=st.booleans(),
    exit_code=st.none() | st.integers(0, 255),
    message=short_text,
    public_ip=st.sampled_from(["", "203.0.113.9", "2001:db8::1", "ssh.example.com"]),
    started_at=st.none() | times,
    image=st.sampled_from(["", "pytorch/pytorch:2.4"]),
)
records = st.builds(
    PodRecord,
    uid=st.just("uid-1"),
    attempt=st.integers(0, 5),
    restarts=st.integers(0, 9),
    instance=instances,
    waiting=waitings,
    last_terminated=st.none() | terminations,
    final=rarely(terminations, one_in=6),
    failure=rarely(waitings, one_in=8),
    start_time=st.none() | times,
    problem=waitings,
)
foreign_conditions = st.lists(
    st.builds(
        PodCondition,
        type=st.sampled_from(FOREIGN),
        status=st.sampled_from(["True", "False", "Unknown"]),
        reason=short_text,
        last_transition_time=st.none() | server_times,
    ),
    max_size=3,
    unique_by=lambda c: c.type,
)


@st.composite
def pods(draw: st.DrawFn) -> Pod:
    """A bound pod as the scheduler left it, possibly already touched by other controllers."""
    scheduled = draw(server_times)
    ours = [PodCondition(type="PodScheduled", status="True", last_transition_time=scheduled)]
    return make_pod(
        restart_policy=draw(st.sampled_from(["Always", "OnFailure", "Never"])),
        gates=tuple(draw(st.lists(st.sampled_from(GATES), unique=True))),
        status=PodStatus(
            phase=draw(
                st.sampled_from(["Pending"] * 3 + ["Running"] * 2 + ["Succeeded", "Failed"])
            ),
            conditions=ours + draw(foreign_conditions),
            qos_class=draw(st.sampled_from(["", "BestEffort"])),
        ),
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply(old: PodStatus, patch: dict[str, object]) -> PodStatus:
    """What a GET returns after the PATCH: the merged JSON, decoded."""
    stored = json.loads(msgspec.json.encode(old))
    merged = merge_patch(stored, patch["status"])
    return msgspec.json.decode(json.dumps(merged).encode(), type=PodStatus)


def check_invariants(pod: Pod, old: PodStatus, new: PodStatus) -> None:
    if old.phase in ("Succeeded", "Failed"):
        assert new.phase == old.phase
    if old.phase == "Running":
        assert new.phase != "Pending"
    conditions = {c.type: c for c in new.conditions}
    assert len(conditions) == len(new.conditions), "condition types are a map"
    if "Ready" in conditions and conditions["Ready"].status == "True":
        assert conditions["ContainersReady"].status == "True"
        for gate in pod.spec.readiness_gates:
            assert conditions[gate.condition_type].status == "True"
    for kind in FOREIGN:  # other controllers' conditions are theirs
        assert [c for c in new.conditions if c.type == kind] == [
            c for c in old.conditions if c.type == kind
        ]
    if new.phase in ("Succeeded", "Failed"):
        assert all(c.state.terminated is not None for c in new.container_statuses)
    # ValidateContainerStateTransition: no way back from terminated unless a restart may follow
    policy = pod.spec.restart_policy
    for before in old.container_statuses:
        ended = before.state.terminated
        if ended is None or policy == "Always" or (policy == "OnFailure" and ended.exit_code):
            continue
        for after in new.container_statuses:
            assert after.name != before.name or after.state.terminated is not None
    # validatePodIPs / validateHostIPs
    assert bool(new.pod_ip) == bool(new.pod_ips)
    assert not new.pod_ips or new.pod_ips[0].ip == new.pod_ip
    assert not new.host_ips or new.host_ips[0].ip == new.host_ip
    assert not old.qos_class or new.qos_class == old.qos_class  # immutable


@settings(max_examples=300)
@given(pods(), st.lists(records, min_size=1, max_size=6), times)
def test_any_history_of_records_keeps_the_status_valid_and_the_patch_exact(
    pod: Pod, history: list[PodRecord], start: datetime
) -> None:
    now = start
    for record in history:
        now += timedelta(seconds=17)
        old = pod.status
        new = pod_status(pod, record, now=now, host_ip="10.0.0.7", provider="fake")
        check_invariants(pod, old, new)
        patch = status_patch(old, new)
        if patch is None:
            assert msgspec.json.encode(old) == msgspec.json.encode(new)
            continue
        stored = apply(old, patch)
        assert stored == new  # the patch takes the stored status exactly to ``new``
        pod = msgspec.structs.replace(pod, status=stored)
        later = now + timedelta(hours=1)
        again = pod_status(pod, record, now=later, host_ip="10.0.0.7", provider="fake")
        assert status_patch(stored, again) is None, "a second sync with the same record is a no-op"


@given(pods(), records, times)
def test_a_terminal_phase_is_never_left(pod: Pod, record: PodRecord, now: datetime) -> None:
    pod.status.phase = "Succeeded" if record.attempt % 2 else "Failed"
    new = pod_status(pod, record, now=now, host_ip="10.0.0.7")
    assert new is pod.status


@given(pods(), records, times)
def test_ready_implies_containers_ready_and_every_gate(
    pod: Pod, record: PodRecord, now: datetime
) -> None:
    new = pod_status(pod, record, now=now, host_ip="10.0.0.7")
    conditions = {c.type: c.status for c in new.conditions}
    if conditions.get("Ready") == "True":
        assert conditions["ContainersReady"] == "True"
        assert all(conditions.get(g.condition_type) == "True" for g in pod.spec.readiness_gates)


@given(pods(), records, times)
def test_a_status_patched_against_itself_is_none(
    pod: Pod, record: PodRecord, now: datetime
) -> None:
    new = pod_status(pod, record, now=now, host_ip="10.0.0.7")
    assert status_patch(new, new) is None
    assert status_patch(pod.status, pod.status) is None
    assert status_patch(new, msgspec.json.decode(msgspec.json.encode(new), type=PodStatus)) is None
