"""Instance → PodStatus: the kubelet's status rules for a pod whose one container is an instance.

Everything that reads pod status (kubectl, Jobs, Services, autoscalers, users' scripts) was
written against the kubelet, so the status here follows the kubelet's (pkg/kubelet/status/
generate.go, kubelet_pods.go and status_manager.go of Kubernetes 1.37) wherever a cloud
instance allows it:

* phase: Pending while the container has never run, Running once it has (also while a restart
  waits), Succeeded/Failed only when the reconciler has written ``record.final`` or
  ``record.failure``, and never out of Succeeded/Failed (the existing status is returned
  unchanged); a terminal pod has every container terminated (ContainerStatusUnknown, exit 137,
  when the record does not say how it ended), as the kubelet's status manager ensures.
* until the reconciler records how a run ended, an EXITED/FAILED/TERMINATING instance shows the
  last state that can still be true (running if it started, else ContainerCreating): the API
  server refuses to take back a terminated state of a ``Never`` pod, so the status must not show
  one before the decision is made.
* conditions the kubelet owns are recomputed (PodScheduled, PodReadyToStartContainers,
  Initialized, ContainersReady, Ready = ContainersReady ∧ readiness gates); everything else
  (DisruptionTarget, readiness-gate conditions, other controllers') is kept exactly as it is, in
  place. lastTransitionTime moves only when a condition's status flips.
* ``vk-trio.io/ProviderReady`` is ours: False with the record's problem (an invalid annotation
  the user must fix) as reason/message, True otherwise, so the problem is visible in
  ``kubectl describe`` and usable as a readiness gate. It is domain-qualified because unprefixed
  condition types belong to Kubernetes.
* containerID is ``<provider>://<instance id>``; imageID is the image the provider reports it
  runs (no digest is invented; the ``docker-pullable://`` style prefix went away with
  dockershim, and tools parse imageID as an image reference). podIP is the instance's public IP
  while that instance exists (never a released machine's address), kept on terminal pods.
* "no news" (no instance known, nothing recorded, e.g. right after vk-trio restarted) keeps the
  container's previous running state and readiness instead of flapping the pod to Pending.

``status_patch`` turns two statuses into the JSON merge patch the API server needs. PURE: no
trio, no I/O, no clock: ``now`` is a parameter.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from fractions import Fraction
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
    ResourceRequirements,
)
from vk_trio.kube.timefmt import kube_time
from vk_trio.pods.quantity import parse_quantity
from vk_trio.pods.record import PodRecord, Terminated
from vk_trio.providers.base import Instance, InstanceState

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})

POD_SCHEDULED = "PodScheduled"
READY_TO_START = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
CONTAINERS_READY = "ContainersReady"
READY = "Ready"
PROVIDER_READY = "vk-trio.io/ProviderReady"
# The kubelet's order, then ours: a new pod's conditions appear in this order.
OWNED_CONDITIONS = (
    READY_TO_START,
    INITIALIZED,
    READY,
    CONTAINERS_READY,
    POD_SCHEDULED,
    PROVIDER_READY,
)

CONTAINER_CREATING = "ContainerCreating"
UNKNOWN_EXIT_CODE = 137
UNKNOWN_REASON = "ContainerStatusUnknown"
UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"

_SANDBOX_STATES = (
    InstanceState.PROVISIONING,
    InstanceState.STARTING,
    InstanceState.RUNNING,
    InstanceState.EXITED,
)


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
        reason, message = record.failure.reason, record.failure.message
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
        host_ips=[PodIP(ip=node_ip)] if node_ip else list(old.host_ips),
        pod_ip=pod_ip,
        pod_ips=pod_ips,
        start_time=_second(old.start_time or record.start_time or now),
        qos_class=old.qos_class or qos_class(pod),  # the API server sets it; it is immutable
        container_statuses=statuses,
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


def qos_class(pod: Pod) -> str:
    """Guaranteed, Burstable or BestEffort from cpu/memory requests and limits (ComputePodQOS)."""
    qos = ""
    for container in [*pod.spec.init_containers, *pod.spec.containers]:
        own = _requirements_qos(container.resources)
        if own == "Burstable" or (qos and qos != own):
            return "Burstable"
        qos = own
    return qos or "BestEffort"


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
    elif instance is not None and instance.state in (
        InstanceState.PROVISIONING,
        InstanceState.STARTING,
    ):
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
        container_id = _container_id(provider, instance.instance_id)
    elif last is not None:
        container_id = _container_id(provider, last.instance_id)
    elif no_news and old is not None:
        container_id = old.container_id
    image_id = instance.image if instance is not None else ""
    return ContainerStatus(
        name=container.name,
        ready=ready,
        restart_count=record.attempt,
        image=container.image,
        image_id=image_id or (old.image_id if old is not None else ""),
        container_id=container_id,
        started=started,
        state=state,
        last_state=ContainerState() if last is None else _terminated_state(last, provider),
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
        message=end.message,
        started_at=_second(end.started_at),
        finished_at=_second(end.finished_at),
        container_id=_container_id(provider, end.instance_id),
    )


def _terminated_state(end: Terminated, provider: str) -> ContainerState:
    return ContainerState(terminated=_terminated(end, provider))


def _unknown_end(instance: Instance | None, provider: str) -> ContainerStateTerminated:
    """A terminal pod's container whose end nobody recorded (the kubelet's words and code)."""
    return ContainerStateTerminated(
        exit_code=UNKNOWN_EXIT_CODE,
        reason=UNKNOWN_REASON,
        message=UNKNOWN_MESSAGE,
        started_at=_second(instance.started_at) if instance is not None else None,
        container_id=_container_id(provider, instance.instance_id) if instance else "",
    )


def _running(started_at: datetime | None) -> ContainerState:
    return ContainerState(running=ContainerStateRunning(started_at=_second(started_at)))


def _waiting(reason: str, message: str) -> ContainerState:
    return ContainerState(waiting=ContainerStateWaiting(reason=reason, message=message))


def _container_id(provider: str, instance_id: str) -> str:
    return f"{provider}://{instance_id}" if instance_id else ""


def _find(statuses: list[ContainerStatus], name: str) -> ContainerStatus | None:
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
    else:  # an instance that exists and has not failed: the kubelet's "sandbox is ready"
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
                message=record.problem.message,
            )
        ),
    }
    foreign = {t: c for t, c in old.items() if t not in OWNED_CONDITIONS}
    ours[READY] = _ready(pod, ours[CONTAINERS_READY], {**foreign, **ours})
    for kind, condition in ours.items():
        before = old.get(kind)
        if before is not None and before.status == condition.status and before.last_transition_time:
            condition.last_transition_time = before.last_transition_time
        else:
            condition.last_transition_time = now
    result = [ours.pop(c.type) if c.type in ours else c for c in pod.status.conditions]
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


# --- addresses, QoS, wire form ----------------------------------------------------------------


def _pod_ips(instance: Instance | None, old: PodStatus, *, keep: bool) -> tuple[str, list[PodIP]]:
    ip = _valid_ip(instance.public_ip) if instance is not None else ""
    if ip:
        return ip, [PodIP(ip=ip)]
    if keep:
        return old.pod_ip, list(old.pod_ips)
    return "", []


def _valid_ip(text: str) -> str:
    """``text`` as the API server accepts an IP (canonical form), or "" (a hostname, junk)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and (address.scope_id or address.ipv4_mapped):
        return ""
    return str(address)


def _requirements_qos(resources: ResourceRequirements) -> str:
    if not resources.requests and not resources.limits:
        return "BestEffort"
    qos = ""
    for name in ("cpu", "memory"):
        request = _amount(resources.requests.get(name))
        limit = _amount(resources.limits.get(name))
        own = "Burstable" if request != limit else "BestEffort" if request == 0 else "Guaranteed"
        if own == "Burstable" or (qos and qos != own):
            return "Burstable"
        qos = own
    return qos


def _amount(value: str | None) -> Fraction | str:
    try:
        return parse_quantity(value) if value is not None else Fraction(0)
    except ValueError:
        return value or ""  # the API server validated it; compare the text as a last resort


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
    if isinstance(value, list):
        return [_times(item) for item in value]
    return value
