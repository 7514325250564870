"""Instance → PodStatus: the kubelet's status rules for a pod whose one container is an instance.

Everything that reads pod status (kubectl, Jobs, Services, autoscalers, scripts) was written
against the kubelet, so this follows Kubernetes 1.37's kubelet (pkg/kubelet/status/generate.go,
kubelet_pods.go, status_manager.go) wherever a cloud instance allows it:

* phase: Pending until the container has run, then Running (also while a restart waits);
  Succeeded/Failed only once the reconciler wrote ``record.final``/``record.failure``, and never
  left again (the existing status is returned as is). A terminal pod's container is terminated,
  with the kubelet's ContainerStatusUnknown/137 when the record does not say how it ended.
* until the reconciler records how a run ended, an EXITED/FAILED/TERMINATING instance shows the
  last state that can still be true (running if it started): the API server refuses to take
  back a terminated state of a ``Never`` pod, so none is shown before the decision.
* the kubelet's conditions are recomputed (Ready = ContainersReady ∧ readiness gates); all
  others (DisruptionTarget, readiness gates, other controllers') are kept as they are, in
  place; lastTransitionTime moves only when a status flips.
* ``vk-trio.io/ProviderReady`` (ours, domain-qualified because bare types are Kubernetes'):
  False with ``record.problem`` (e.g. an invalid annotation) as reason/message, else True.
* ``vk-trio.io/Reconciled`` (ours): False with ``record.fault`` when the last reconcile of the
  pod failed unexpectedly (named, retried with backoff), True again once one succeeds; a pod
  that never had a fault does not carry it.
* every message is cut to ``MAX_MESSAGE`` characters: a cloud's or a registry's words end up
  here, and a status must stay far below the API server's object size limit.
* containerID is ``<provider>://<instance id>`` (the instance's own cloud on a node that fronts
  several); imageID is the image the provider says it
  runs (no digest invented, no scheme: tools parse it as an image reference). podIP is the
  instance's public IP while the instance exists (never a released machine's), kept when
  terminal. With no news at all (just restarted) the previous running state is kept.

``status_patch`` turns two statuses into the merge patch to send. PURE: ``now`` is a parameter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from vk_trio.kube.models import (
    Container,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    Pod,
    PodCondition,
    PodIP,
    PodStatus,
)
from vk_trio.kube.timefmt import kube_time
from vk_trio.pods.record import PodRecord, Terminated
from vk_trio.pods.translate import qos_class
from vk_trio.providers.base import Instance, InstanceState

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})

POD_SCHEDULED = "PodScheduled"
READY_TO_START = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
CONTAINERS_READY = "ContainersReady"
READY = "Ready"
PROVIDER_READY = "vk-trio.io/ProviderReady"
RECONCILED = "vk-trio.io/Reconciled"
# The kubelet's order, then ours: a new pod's conditions appear in this order.
OWNED_CONDITIONS: tuple[str, ...] = (READY_TO_START, INITIALIZED, READY, CONTAINERS_READY)
OWNED_CONDITIONS += (POD_SCHEDULED, PROVIDER_READY, RECONCILED)
MAX_MESSAGE = 4096  # the kubelet's limit for a termination message

CONTAINER_CREATING = "ContainerCreating"
UNKNOWN_EXIT_CODE = 137
UNKNOWN_REASON = "ContainerStatusUnknown"
UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"

# An instance that exists and has not failed: the kubelet's "the pod sandbox is ready".
_SANDBOX_STATES = frozenset(InstanceState) - {InstanceState.FAILED, InstanceState.TERMINATING}
_CREATING = (InstanceState.PROVISIONING, InstanceState.STARTING)


def pod_status(
    pod: Pod, record: PodRecord, *, now: datetime, host_ip: str, provider: str = "vk-trio"
) -> PodStatus:
    """The status ``pod`` should have, given what the agent knows (``record``).

    Args:
        now: the time stamped on conditions that flip (and startTime if nothing set it).
        host_ip: the node's IP (hostIP/hostIPs); ignored unless it is a valid IP address.
        provider: the provider's name, the scheme of containerID ("runpod://abc123").

    Returns the existing ``pod.status`` object itself when the pod is already terminal.
    """
    old = pod.status
    if old.phase in TERMINAL_PHASES:
        return old
    now = _utc(now)
    terminal = record.final is not None or record.failure is not None
    no_news = not terminal and record.instance is None and record.waiting is None
    statuses = [
        _container_status(
            container,
            record,
            _find(old.container_statuses, container.name),
            provider=provider,
            terminal=terminal,
            no_news=no_news,
        )
        for container in pod.spec.containers[:1]  # translate.check_pod allows exactly one
    ]
    phase = _phase(record, statuses, old_phase=old.phase)
    reason, message = "", ""
    if record.failure is not None:
        reason, message = record.failure.reason, _short(record.failure.message)
    elif phase == old.phase:  # the kubelet keeps reason and message while the phase holds
        reason, message = old.reason, old.message
    pod_ip, pod_ips = _pod_ips(record.instance, old, keep=terminal or no_news)
    node_ip = _valid_ip(host_ip)
    return PodStatus(
        phase=phase,
        conditions=_conditions(pod, record, phase, statuses, now=now, no_news=no_news),
        message=message,
        reason=reason,
        host_ip=node_ip or old.host_ip,
        host_ips=[PodIP(ip=node_ip)] if node_ip else old.host_ips,
        pod_ip=pod_ip,
        pod_ips=pod_ips,
        start_time=_second(old.start_time or record.start_time or now),
        qos_class=old.qos_class or qos_class(pod),  # the API server sets it; it is immutable
        container_statuses=statuses or (),
    )


def status_patch(old: PodStatus, new: PodStatus) -> dict[str, object] | None:
    """A JSON merge patch (``{"status": {...}}``) taking ``old`` to ``new``; None if equal.

    Top-level fields are compared in their wire form (defaults omitted, times as RFC 3339
    seconds), so what the API server normalises (sub-second times, empty values) is no change.
    A changed list is sent whole, because a merge patch replaces lists: the complete
    conditions (ours and everyone else's) and the complete containerStatuses. A field that
    went back to its default is sent as null, which removes it.
    """
    before, after = _wire(old), _wire(new)
    changed = {
        key: after.get(key)
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }
    return {"status": changed} if changed else None


# --- the container ----------------------------------------------------------------------------


def _container_status(
    container: Container,
    record: PodRecord,
    old: ContainerStatus | None,
    *,
    provider: str,
    terminal: bool,
    no_news: bool,
) -> ContainerStatus:
    instance = record.instance
    ready, started = False, False
    if terminal:
        if record.final is not None:
            state = ContainerState(terminated=_terminated(record.final, provider))
        else:
            state = ContainerState(terminated=_unknown_end(instance, provider))
    elif instance is not None and instance.state is InstanceState.RUNNING:
        state = _running(instance.started_at)
        ready, started = instance.ready, True
    elif instance is not None and instance.state in _CREATING:
        state = _waiting(CONTAINER_CREATING, instance.message)
    elif record.waiting is not None:
        state = _waiting(record.waiting.reason, record.waiting.message)
    elif instance is not None and instance.started_at is not None:
        state, started = _running(instance.started_at), True  # ended; the decision is pending
    elif no_news and old is not None and old.state.running is not None:
        state, ready, started = old.state, old.ready, True
    else:
        state = _waiting(CONTAINER_CREATING, instance.message if instance else "")
    last = record.last_terminated
    container_id = ""
    if state.terminated is not None and state.terminated.container_id:
        container_id = state.terminated.container_id
    elif instance is not None:
        container_id = _container_id(instance.provider or provider, instance.instance_id)
    elif last is not None:
        container_id = _container_id(last.provider or provider, last.instance_id)
    elif no_news and old is not None:
        container_id = old.container_id
    image_id = instance.image if instance is not None else ""
    return ContainerStatus(
        name=container.name,
        ready=ready,
        restart_count=record.restarts,
        image=container.image,
        image_id=image_id or (old.image_id if old is not None else ""),
        container_id=container_id,
        started=started,
        state=state,
        last_state=ContainerState(terminated=_terminated(last, provider) if last else None),
    )


def _phase(record: PodRecord, statuses: list[ContainerStatus], *, old_phase: str) -> str:
    if record.failure is not None:
        return FAILED
    if record.final is not None:
        return SUCCEEDED if record.final.exit_code == 0 else FAILED
    has_run = record.last_terminated is not None or any(
        s.state.running is not None or s.state.terminated is not None for s in statuses
    )
    # Running never goes back to Pending: a restart waits in Running, as with the kubelet.
    return RUNNING if has_run or old_phase == RUNNING else PENDING


def _terminated(end: Terminated, provider: str) -> ContainerStateTerminated:
    return ContainerStateTerminated(
        exit_code=end.exit_code,
        reason=end.reason or ("Completed" if end.exit_code == 0 else "Error"),
        message=_short(end.message),
        started_at=_second(end.started_at),
        finished_at=_second(end.finished_at),
        container_id=_container_id(end.provider or provider, end.instance_id),
    )


def _unknown_end(instance: Instance | None, provider: str) -> ContainerStateTerminated:
    """A terminal pod's container whose end nobody recorded (the kubelet's words and code)."""
    return ContainerStateTerminated(
        exit_code=UNKNOWN_EXIT_CODE,
        reason=UNKNOWN_REASON,
        message=UNKNOWN_MESSAGE,
        started_at=_second(instance.started_at) if instance is not None else None,
        container_id=(
            _container_id(instance.provider or provider, instance.instance_id) if instance else ""
        ),
    )


def _running(started_at: datetime | None) -> ContainerState:
    return ContainerState(running=ContainerStateRunning(started_at=_second(started_at)))


def _waiting(reason: str, message: str) -> ContainerState:
    return ContainerState(waiting=ContainerStateWaiting(reason=reason, message=_short(message)))


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _container_id(provider: str, instance_id: str) -> str:
    return f"{provider}://{instance_id}" if instance_id else ""


def _find(statuses: Sequence[ContainerStatus], name: str) -> ContainerStatus | None:
    return next((s for s in statuses if s.name == name), None)


# --- conditions -------------------------------------------------------------------------------


def _conditions(
    pod: Pod,
    record: PodRecord,
    phase: str,
    statuses: list[ContainerStatus],
    *,
    now: datetime,
    no_news: bool,
) -> list[PodCondition]:
    old = {c.type: c for c in pod.status.conditions}
    instance = record.instance
    if no_news and READY_TO_START in old:
        sandbox = old[READY_TO_START].status == "True"
    else:
        sandbox = (
            phase not in TERMINAL_PHASES
            and instance is not None
            and instance.state in _SANDBOX_STATES
        )
    ours = {
        READY_TO_START: PodCondition(type=READY_TO_START, status=_bool(sandbox)),
        INITIALIZED: PodCondition(
            type=INITIALIZED, status="True", reason="PodCompleted" if phase == SUCCEEDED else ""
        ),
        CONTAINERS_READY: _containers_ready(pod, phase, statuses),
        POD_SCHEDULED: PodCondition(type=POD_SCHEDULED, status="True"),
        PROVIDER_READY: (
            PodCondition(type=PROVIDER_READY, status="True")
            if record.problem is None
            else PodCondition(
                type=PROVIDER_READY,
                status="False",
                reason=record.problem.reason,
                message=_short(record.problem.message),
            )
        ),
    }
    if record.fault is not None:
        ours[RECONCILED] = PodCondition(
            type=RECONCILED,
            status="False",
            reason=record.fault.reason,
            message=_short(record.fault.message),
        )
    elif RECONCILED in old:
        ours[RECONCILED] = PodCondition(type=RECONCILED, status="True")
    foreign = {t: c for t, c in old.items() if t not in OWNED_CONDITIONS}
    ours[READY] = _ready(pod, ours[CONTAINERS_READY], {**foreign, **ours})
    for kind, condition in ours.items():
        before = old.get(kind)
        if before is not None and before.status == condition.status and before.last_transition_time:
            condition.last_transition_time = _utc(before.last_transition_time)
        else:
            condition.last_transition_time = now
    result = []
    for existing in pod.status.conditions:  # in place; a repeated type of ours is dropped
        if existing.type in ours:
            result.append(ours.pop(existing.type))
        elif existing.type not in OWNED_CONDITIONS:
            result.append(existing)
    return result + [ours[kind] for kind in OWNED_CONDITIONS if kind in ours]


def _containers_ready(pod: Pod, phase: str, statuses: list[ContainerStatus]) -> PodCondition:
    if phase == SUCCEEDED:
        return PodCondition(type=CONTAINERS_READY, status="False", reason="PodCompleted")
    if phase == FAILED:
        return PodCondition(type=CONTAINERS_READY, status="False", reason="PodFailed")
    by_name = {s.name: s for s in statuses}
    unknown = [c.name for c in pod.spec.containers if c.name not in by_name]
    unready = [
        c.name for c in pod.spec.containers if c.name in by_name and not by_name[c.name].ready
    ]
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_go_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_go_list(unready)}")
    if messages:
        return PodCondition(
            type=CONTAINERS_READY,
            status="False",
            reason="ContainersNotReady",
            message=", ".join(messages),
        )
    return PodCondition(type=CONTAINERS_READY, status="True")


def _ready(pod: Pod, containers: PodCondition, conditions: dict[str, PodCondition]) -> PodCondition:
    if containers.status != "True":
        return PodCondition(
            type=READY,
            status=containers.status,
            reason=containers.reason,
            message=containers.message,
        )
    messages = []
    for gate in pod.spec.readiness_gates:
        condition = conditions.get(gate.condition_type)
        if condition is None:
            messages.append(
                f'corresponding condition of pod readiness gate "{gate.condition_type}" '
                "does not exist."
            )
        elif condition.status != "True":
            messages.append(
                f'the status of pod readiness gate "{gate.condition_type}" is not "True", '
                f"but {condition.status}"
            )
    if messages:
        return PodCondition(
            type=READY, status="False", reason="ReadinessGatesNotReady", message=", ".join(messages)
        )
    return PodCondition(type=READY, status="True")


def _bool(value: bool) -> str:
    return "True" if value else "False"


def _go_list(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"  # how Go's %s prints a []string


# --- addresses, wire form ---------------------------------------------------------------------


def _pod_ips(
    instance: Instance | None, old: PodStatus, *, keep: bool
) -> tuple[str, Sequence[PodIP]]:
    ip = _valid_ip(instance.public_ip) if instance is not None else ""
    if ip:
        return ip, [PodIP(ip=ip)]
    if keep:
        return old.pod_ip, old.pod_ips
    return "", ()


def _valid_ip(text: str) -> str:
    """``text`` as the API server accepts an IP (canonical form), or "" (a hostname, junk)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and (address.scope_id or address.ipv4_mapped):
        return ""
    return str(address)


def _utc(moment: datetime) -> datetime:
    """A metav1.Time: UTC, whole seconds (a naive time is taken to be UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _second(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _wire(status: PodStatus) -> dict[str, Any]:
    encoded: dict[str, Any] = msgspec.to_builtins(status, builtin_types=(datetime,))
    return {key: _times(value) for key, value in encoded.items()}


def _times(value: Any) -> Any:
    if isinstance(value, datetime):
        return kube_time(_utc(value))
    if isinstance(value, dict):
        return {key: _times(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_times(item) for item in value]
    return value
