"""pods/status.py: the kubelet's status rules, one rule per test.

The builders here are shared with test_status_properties.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from vk_trio.kube.models import (
    Container,
    ContainerState,
    ContainerStateRunning,
    ContainerStatus,
    ObjectMeta,
    Pod,
    PodCondition,
    PodIP,
    PodReadinessGate,
    PodSpec,
    PodStatus,
    ResourceRequirements,
)
from vk_trio.pods import lifecycle
from vk_trio.pods.record import PodRecord, Terminated, Waiting
from vk_trio.pods.status import PROVIDER_READY, pod_status, status_patch
from vk_trio.pods.translate import qos_class
from vk_trio.providers.base import Instance, InstanceState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
NODE_IP = "10.0.0.7"


def make_pod(
    *,
    restart_policy: str = "Never",
    gates: tuple[str, ...] = (),
    status: PodStatus | None = None,
    resources: ResourceRequirements | None = None,
) -> Pod:
    main = Container(
        name="main", image="pytorch/pytorch:2.4", resources=resources or ResourceRequirements()
    )
    return Pod(
        metadata=ObjectMeta(name="train", namespace="ml", uid="uid-1"),
        spec=PodSpec(
            containers=[main],
            restart_policy=restart_policy,
            readiness_gates=[PodReadinessGate(condition_type=g) for g in gates],
        ),
        status=status or PodStatus(phase="Pending"),
    )


def make_instance(state: InstanceState, **fields: Any) -> Instance:
    base: dict[str, Any] = {
        "instance_id": "i-42",
        "node_name": "vk-1",
        "pod_uid": "uid-1",
        "image": "pytorch/pytorch:2.4",
        "public_ip": "203.0.113.9",
        "started_at": T0 + timedelta(seconds=30)
        if state is not InstanceState.PROVISIONING
        else None,
    }
    return Instance(state=state, **{**base, **fields})


def make_record(**fields: Any) -> PodRecord:
    return PodRecord(**{"uid": "uid-1", "start_time": T0, **fields})


def status(pod: Pod, record: PodRecord, *, now: datetime = NOW) -> PodStatus:
    return pod_status(pod, record, now=now, host_ip=NODE_IP, provider="runpod")


def condition(s: PodStatus, kind: str) -> PodCondition:
    found = [c for c in s.conditions if c.type == kind]
    assert len(found) == 1, f"{kind}: {found}"
    return found[0]


def cond(s: PodStatus, kind: str) -> tuple[str, str, str]:
    c = condition(s, kind)
    return c.status, c.reason, c.message


def with_status(pod: Pod, s: PodStatus) -> Pod:
    return msgspec.structs.replace(pod, status=s)


# --- Pending ----------------------------------------------------------------------------------


def test_a_pod_without_an_instance_is_pending_and_container_creating() -> None:
    s = status(make_pod(), make_record())
    assert s.phase == "Pending"
    (c,) = s.container_statuses
    assert c.state.waiting is not None and c.state.waiting.reason == "ContainerCreating"
    assert (c.name, c.image, c.ready, c.started, c.restart_count) == (
        "main",
        "pytorch/pytorch:2.4",
        False,
        False,
        0,
    )
    assert (c.container_id, c.image_id) == ("", "")
    assert cond(s, "PodScheduled")[0] == "True"
    assert cond(s, "Initialized")[0] == "True"
    assert cond(s, "PodReadyToStartContainers")[0] == "False"
    unready = ("False", "ContainersNotReady", "containers with unready status: [main]")
    assert cond(s, "ContainersReady") == unready
    assert cond(s, "Ready") == unready
    assert cond(s, PROVIDER_READY) == ("True", "", "")
    assert (s.host_ip, [ip.ip for ip in s.host_ips]) == (NODE_IP, [NODE_IP])
    assert (s.pod_ip, list(s.pod_ips)) == ("", [])
    assert s.start_time == T0
    assert s.qos_class == "BestEffort"


def test_the_records_waiting_reason_is_the_containers() -> None:
    waiting = Waiting(reason="CreateContainerConfigError", message='secret "hf" not found')
    (c,) = status(make_pod(), make_record(waiting=waiting)).container_statuses
    assert c.state.waiting is not None
    assert (c.state.waiting.reason, c.state.waiting.message) == (waiting.reason, waiting.message)


def test_a_provisioning_instance_is_container_creating_with_its_message() -> None:
    instance = make_instance(InstanceState.PROVISIONING, message="pulling image")
    stale = Waiting(reason="ContainerCreating", message="waiting for capacity")
    s = status(make_pod(), make_record(instance=instance, waiting=stale))
    assert s.phase == "Pending"
    (c,) = s.container_statuses
    assert c.state.waiting is not None
    assert (c.state.waiting.reason, c.state.waiting.message) == (
        "ContainerCreating",
        "pulling image",
    )
    assert c.container_id == "runpod://i-42"
    assert cond(s, "PodReadyToStartContainers")[0] == "True"
    assert s.pod_ip == "203.0.113.9"


# --- Running ----------------------------------------------------------------------------------


def test_a_running_ready_instance_makes_a_ready_running_pod() -> None:
    instance = make_instance(InstanceState.RUNNING, ready=True)
    s = status(make_pod(), make_record(instance=instance))
    assert s.phase == "Running"
    (c,) = s.container_statuses
    assert c.state == ContainerState(running=ContainerStateRunning(started_at=instance.started_at))
    assert (c.ready, c.started) == (True, True)
    assert (c.container_id, c.image_id) == ("runpod://i-42", "pytorch/pytorch:2.4")
    assert (s.pod_ip, [ip.ip for ip in s.pod_ips]) == ("203.0.113.9", ["203.0.113.9"])
    assert cond(s, "ContainersReady") == ("True", "", "")
    assert cond(s, "Ready") == ("True", "", "")


def test_on_a_node_of_several_clouds_the_container_id_names_the_instances_cloud() -> None:
    instance = make_instance(InstanceState.RUNNING, ready=True, provider="vastai")
    s = pod_status(make_pod(), make_record(instance=instance), now=NOW, host_ip=NODE_IP,
                   provider="runpod,vastai")  # fmt: skip
    assert s.container_statuses[0].container_id == "vastai://i-42"
    ended = lifecycle.terminated_from(
        make_instance(InstanceState.EXITED, exit_code=0, provider="vastai"), now=NOW
    )
    done = status(make_pod(), make_record(final=ended))
    terminated = done.container_statuses[0].state.terminated
    assert terminated is not None and terminated.container_id == "vastai://i-42"


def test_a_running_instance_that_is_not_ready_keeps_the_pod_unready() -> None:
    s = status(make_pod(), make_record(instance=make_instance(InstanceState.RUNNING)))
    (c,) = s.container_statuses
    assert (c.ready, c.started) == (False, True)
    assert cond(s, "Ready")[:2] == ("False", "ContainersNotReady")


def test_ready_waits_for_every_readiness_gate() -> None:
    pod = make_pod(gates=("example.com/lb", "example.com/warm"))
    record = make_record(instance=make_instance(InstanceState.RUNNING, ready=True))
    s = status(pod, record)
    assert cond(s, "ContainersReady")[0] == "True"
    assert cond(s, "Ready") == (
        "False",
        "ReadinessGatesNotReady",
        'corresponding condition of pod readiness gate "example.com/lb" does not exist., '
        'corresponding condition of pod readiness gate "example.com/warm" does not exist.',
    )
    gates = [
        PodCondition(type="example.com/lb", status="True", last_transition_time=T0),
        PodCondition(type="example.com/warm", status="False", last_transition_time=T0),
    ]
    s = status(with_status(pod, PodStatus(phase="Running", conditions=gates)), record)
    assert cond(s, "Ready")[2] == (
        'the status of pod readiness gate "example.com/warm" is not "True", but False'
    )
    gates[1].status = "True"
    s = status(with_status(pod, PodStatus(phase="Running", conditions=gates)), record)
    assert cond(s, "Ready") == ("True", "", "")


def test_a_restart_in_backoff_is_running_with_crash_loop_and_the_last_end() -> None:
    crashed = Terminated(
        exit_code=3,
        reason="Error",
        message="boom",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=9),
        instance_id="i-41",
    )
    backoff = Waiting(reason="CrashLoopBackOff", message="back-off 10s restarting failed container")
    record = make_record(attempt=1, restarts=1, waiting=backoff, last_terminated=crashed)
    s = status(make_pod(restart_policy="Always"), record)
    assert s.phase == "Running"
    (c,) = s.container_statuses
    assert c.state.waiting is not None and c.state.waiting.reason == "CrashLoopBackOff"
    assert c.restart_count == 1
    last = c.last_state.terminated
    assert last is not None
    assert (last.exit_code, last.reason, last.message, last.container_id) == (
        3,
        "Error",
        "boom",
        "runpod://i-41",
    )
    assert c.container_id == "runpod://i-41"  # the kubelet points at the last container too
    assert (s.pod_ip, list(s.pod_ips)) == ("", [])  # the old machine is released, so is its address


def test_an_exit_not_yet_decided_shows_the_last_state_that_can_still_be_true() -> None:
    exited = make_instance(InstanceState.EXITED, exit_code=1, finished_at=NOW)
    s = status(make_pod(restart_policy="Never"), make_record(instance=exited))
    (c,) = s.container_statuses
    assert c.state.terminated is None  # a Never pod's terminated state can't be taken back
    assert c.state.running is not None and c.ready is False
    assert s.phase == "Running"


def test_a_pod_that_ran_never_goes_back_to_pending() -> None:
    pod = make_pod(status=PodStatus(phase="Running"))
    assert status(pod, make_record(waiting=Waiting(reason="ContainerCreating"))).phase == "Running"


def test_with_no_news_the_previous_running_state_and_readiness_are_kept() -> None:
    running = ContainerStatus(
        name="main",
        ready=True,
        started=True,
        container_id="runpod://i-42",
        image_id="pytorch/pytorch:2.4",
        state=ContainerState(running=ContainerStateRunning(started_at=T0)),
    )
    old = PodStatus(
        phase="Running",
        pod_ip="203.0.113.9",
        pod_ips=[PodIP(ip="203.0.113.9")],
        container_statuses=[running],
        conditions=[PodCondition(type="PodReadyToStartContainers", status="True")],
    )
    s = status(make_pod(status=old), make_record())  # just rebuilt after a restart
    (c,) = s.container_statuses
    assert (c.state, c.ready, c.container_id) == (running.state, True, "runpod://i-42")
    assert cond(s, "Ready")[0] == "True"
    assert cond(s, "PodReadyToStartContainers")[0] == "True"
    assert s.pod_ip == "203.0.113.9"


# --- terminal ---------------------------------------------------------------------------------


def test_a_final_exit_zero_succeeds_with_completed() -> None:
    done = Terminated(
        exit_code=0,
        reason="",
        started_at=T0,
        finished_at=NOW,
        instance_id="i-42",
    )
    instance = make_instance(InstanceState.EXITED, exit_code=0)
    s = status(make_pod(restart_policy="OnFailure"), make_record(final=done, instance=instance))
    assert s.phase == "Succeeded"
    assert (s.reason, s.message) == ("", "")
    (c,) = s.container_statuses
    end = c.state.terminated
    assert end is not None
    assert (end.exit_code, end.reason, end.started_at, end.finished_at, end.container_id) == (
        0,
        "Completed",
        T0,
        NOW,
        "runpod://i-42",
    )
    assert (c.ready, c.started) == (False, False)
    assert cond(s, "ContainersReady") == ("False", "PodCompleted", "")
    assert cond(s, "Ready") == ("False", "PodCompleted", "")
    assert cond(s, "Initialized") == ("True", "PodCompleted", "")
    assert cond(s, "PodReadyToStartContainers")[0] == "False"


def test_a_final_non_zero_exit_fails_with_error() -> None:
    s = status(make_pod(), make_record(final=Terminated(exit_code=2, reason="", instance_id="i")))
    assert s.phase == "Failed"
    (c,) = s.container_statuses
    assert c.state.terminated is not None and c.state.terminated.reason == "Error"
    assert cond(s, "Ready") == ("False", "PodFailed", "")


def test_the_records_end_reason_and_message_are_kept() -> None:
    oom = Terminated(exit_code=137, reason="OOMKilled", message="out of memory", instance_id="i")
    (c,) = status(make_pod(), make_record(final=oom)).container_statuses
    assert c.state.terminated is not None
    assert (c.state.terminated.reason, c.state.terminated.message) == ("OOMKilled", "out of memory")


def test_a_pod_failure_sets_reason_and_message_and_the_container_end() -> None:
    lost = Terminated(exit_code=137, reason="InstanceLost", message="gone", instance_id="i-42")
    failure = Waiting(reason="DeadlineExceeded", message="Pod was active longer than 600s")
    s = status(make_pod(restart_policy="Always"), make_record(failure=failure, final=lost))
    assert (s.phase, s.reason, s.message) == ("Failed", failure.reason, failure.message)
    (c,) = s.container_statuses
    assert c.state.terminated is not None
    assert (c.state.terminated.exit_code, c.state.terminated.reason) == (137, "InstanceLost")


def test_a_failed_pod_without_a_recorded_end_has_an_unknown_terminated_container() -> None:
    failure = Waiting(reason="Unsupported", message="spec.containers[1] (b): ...")
    s = status(make_pod(), make_record(failure=failure))
    assert s.phase == "Failed"
    (c,) = s.container_statuses
    assert c.state.terminated is not None
    assert (c.state.terminated.exit_code, c.state.terminated.reason) == (
        137,
        "ContainerStatusUnknown",
    )


def test_a_terminal_phase_is_never_left() -> None:
    for phase in ("Succeeded", "Failed"):
        old = PodStatus(phase=phase, reason="Evicted")
        running = make_record(instance=make_instance(InstanceState.RUNNING, ready=True))
        assert status(make_pod(status=old), running) is old


def test_terminal_pods_keep_their_last_address() -> None:
    old = PodStatus(phase="Running", pod_ip="203.0.113.9", pod_ips=[PodIP(ip="203.0.113.9")])
    done = make_record(final=Terminated(exit_code=0, reason="Completed", instance_id="i-42"))
    s = status(make_pod(status=old), done)
    assert (s.pod_ip, s.pod_ips) == (old.pod_ip, old.pod_ips)


# --- conditions, addresses, QoS ---------------------------------------------------------------


def test_foreign_conditions_are_kept_in_place_and_times_move_only_on_flips() -> None:
    disruption = PodCondition(
        type="DisruptionTarget",
        status="True",
        reason="EvictionByEvictionAPI",
        last_transition_time=T0,
    )
    old = PodStatus(
        phase="Pending",
        conditions=[
            PodCondition(type="PodScheduled", status="True", last_transition_time=T0),
            disruption,
            PodCondition(type="Ready", status="False", last_transition_time=T0),
            PodCondition(type="PodReadyToStartContainers", status="False", last_transition_time=T0),
        ],
    )
    record = make_record(instance=make_instance(InstanceState.PROVISIONING))
    s = status(make_pod(status=old), record)
    assert [c.type for c in s.conditions] == [
        "PodScheduled",
        "DisruptionTarget",
        "Ready",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        PROVIDER_READY,
    ]
    assert s.conditions[1] == disruption
    assert condition(s, "PodScheduled").last_transition_time == T0
    assert condition(s, "Ready").last_transition_time == T0  # still False
    assert condition(s, "PodReadyToStartContainers").last_transition_time == NOW  # flipped
    assert condition(s, "Initialized").last_transition_time == NOW  # new


def test_a_problem_becomes_a_false_provider_ready_condition() -> None:
    problem = Waiting(reason="InvalidAnnotation", message="runpod.io/gpu-type: unknown 'H900'")
    s = status(make_pod(), make_record(problem=problem))
    assert cond(s, PROVIDER_READY) == ("False", problem.reason, problem.message)
    fixed = status(with_status(make_pod(), s), make_record(), now=NOW + timedelta(minutes=1))
    assert cond(fixed, PROVIDER_READY) == ("True", "", "")
    assert condition(fixed, PROVIDER_READY).last_transition_time == NOW + timedelta(minutes=1)


def test_reason_and_message_are_kept_while_the_phase_holds() -> None:
    old = PodStatus(phase="Pending", reason="Preempting", message="by the scheduler")
    s = status(make_pod(status=old), make_record())
    assert (s.reason, s.message) == ("Preempting", "by the scheduler")
    moved = status(make_pod(status=old), make_record(instance=make_instance(InstanceState.RUNNING)))
    assert (moved.reason, moved.message) == ("", "")


def test_only_real_ip_addresses_become_pod_and_host_ips() -> None:
    for public_ip, expected in [
        ("ssh.runpod.io", ""),
        ("2001:DB8::1", "2001:db8::1"),
        ("fe80::1%eth0", ""),
        ("::ffff:1.2.3.4", ""),
        ("010.1.1.1", ""),
    ]:
        record = make_record(instance=make_instance(InstanceState.RUNNING, public_ip=public_ip))
        s = pod_status(make_pod(), record, now=NOW, host_ip="not-an-ip")
        assert s.pod_ip == expected
        assert (s.host_ip, list(s.host_ips)) == ("", [])


def test_start_time_is_kept_once_set() -> None:
    old = PodStatus(phase="Pending", start_time=T0 - timedelta(hours=1))
    assert status(make_pod(status=old), make_record()).start_time == old.start_time
    assert status(make_pod(), make_record(start_time=None)).start_time == NOW


def test_qos_class_follows_kubernetes() -> None:
    def qos(requests: dict[str, str], limits: dict[str, str]) -> str:
        resources = ResourceRequirements(requests=requests, limits=limits)
        return qos_class(make_pod(resources=resources))

    assert qos({}, {}) == "BestEffort"
    assert qos({"nvidia.com/gpu": "1"}, {"nvidia.com/gpu": "1"}) == "BestEffort"
    assert qos({"cpu": "1"}, {}) == "Burstable"
    assert qos({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}) == "Guaranteed"
    assert qos({"cpu": "1000m", "memory": "1Gi"}, {"cpu": "1", "memory": "1024Mi"}) == "Guaranteed"
    assert qos({"cpu": "1"}, {"cpu": "1"}) == "Burstable"  # memory unset
    kept = PodStatus(phase="Pending", qos_class="Guaranteed")
    assert status(make_pod(status=kept), make_record()).qos_class == "Guaranteed"


# --- the patch --------------------------------------------------------------------------------


def test_an_unchanged_status_needs_no_patch() -> None:
    s = status(make_pod(), make_record(instance=make_instance(InstanceState.RUNNING, ready=True)))
    assert status_patch(s, s) is None
    assert status_patch(s, msgspec.structs.replace(s)) is None


def test_the_patch_holds_only_what_changed_with_whole_lists_and_kube_times() -> None:
    pod = make_pod()
    pending = status(pod, make_record())
    running = status(
        with_status(pod, pending),
        make_record(instance=make_instance(InstanceState.RUNNING, ready=True)),
    )
    patch = status_patch(pending, running)
    assert patch is not None
    body = patch["status"]
    assert isinstance(body, dict)
    assert sorted(body) == ["conditions", "containerStatuses", "phase", "podIP", "podIPs"]
    assert body["phase"] == "Running"
    assert len(body["conditions"]) == len(running.conditions)
    (c,) = body["containerStatuses"]
    assert c["state"] == {"running": {"startedAt": "2026-01-01T00:00:30Z"}}
    assert msgspec.json.encode(patch)  # plain JSON


def test_sub_second_times_are_no_change() -> None:
    s = PodStatus(phase="Running", start_time=T0)
    assert status_patch(s, msgspec.structs.replace(s, start_time=T0.replace(microsecond=5))) is None


def test_a_field_back_at_its_default_is_removed_with_null() -> None:
    old = PodStatus(phase="Pending", reason="Preempting", message="m")
    patch = status_patch(old, PodStatus(phase="Pending"))
    assert patch == {"status": {"message": None, "reason": None}}


def test_a_repeated_condition_of_ours_is_collapsed_into_one() -> None:
    twice = [
        PodCondition(type="Ready", status="False", last_transition_time=T0),
        PodCondition(type="Ready", status="True", last_transition_time=T0),
    ]
    s = status(make_pod(status=PodStatus(phase="Pending", conditions=twice)), make_record())
    assert [c.type for c in s.conditions].count("Ready") == 1
    assert s.conditions[0].type == "Ready"  # kept in its place
