"""Would the scheduler put this pod on our virtual node? The checks burst makes before binding.

Binding bypasses the scheduler, so burst makes the scheduler's node checks itself, for the one
node it can bind to, and answers with a sentence the user reads in an Event:

* the node is Ready and not cordoned (``spec.unschedulable``);
* capacity: the pod's ``nvidia.com/gpu`` and one pod slot fit in what the node's allocatable
  leaves after the pods bound to it (a pod asks for the larger of its containers' sum and its
  largest init container, plus ``overhead``, as the scheduler computes it);
* ``nodeSelector`` and required node affinity match the node's labels (In, NotIn, Exists,
  DoesNotExist, Gt, Lt; ``matchFields`` on ``metadata.name``);
* taints: every NoSchedule and NoExecute taint of the node is tolerated by the pod, except the
  node's *own* NoSchedule (or PreferNoSchedule) taint, the one vk-trio registers to keep the
  default scheduler away. That taint is what says "only pods that were meant to go there", and
  burst's decision is exactly that intent, so it is waived; the pod is bound as it is and not
  given a toleration (one write less per pod; Kubernetes never evicts for NoSchedule). An own
  taint with effect NoExecute is not waived: the taint manager would evict the pod at once.
* vk-trio can run the pod at all (``translate.check_pod``: one container, no init containers,
  supported volumes): a pod that would fail at once on the node stays local instead.

PURE: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from vk_trio.kube.models import Node, Pod, Taint, Toleration
from vk_trio.kube.scheduling import NodeSelectorRequirement, NodeSelectorTerm, UnboundPod
from vk_trio.pods.quantity import parse_quantity
from vk_trio.pods.translate import GPU, check_pod
from vk_trio.providers.base import InvalidSpec

ENFORCED_EFFECTS = ("NoSchedule", "NoExecute")
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class Misfit:
    """Why the pod cannot go. ``lasting``: it never will on this node as the pod is written
    (a Warning); otherwise the node may take it later (full, NotReady, cordoned: Normal)."""

    message: str
    lasting: bool


@dataclass(frozen=True, slots=True)
class Room:
    """What the node has left: GPUs and pod slots (allocatable minus what bound pods ask)."""

    gpus: Fraction
    pods: int
    gpu_capacity: Fraction
    pod_capacity: int

    def minus(self, gpus: Fraction) -> Room:
        return Room(self.gpus - gpus, self.pods - 1, self.gpu_capacity, self.pod_capacity)


def _quantity(resources: Mapping[str, str], name: str) -> Fraction:
    value = resources.get(name)
    if value is None:
        return Fraction(0)
    try:
        return parse_quantity(value)
    except ValueError:
        return Fraction(0)


def _container_gpus(requests: Mapping[str, str], limits: Mapping[str, str]) -> Fraction:
    # The API server defaults an extended resource's request to its limit; read both anyway.
    return _quantity(requests, GPU) if GPU in requests else _quantity(limits, GPU)


def pod_gpus(pod: Pod) -> Fraction:
    """The GPUs the scheduler counts for ``pod`` (sidecar init containers add to the sum)."""
    spec = pod.spec
    total = sum(
        (_container_gpus(c.resources.requests, c.resources.limits) for c in spec.containers),
        Fraction(0),
    )
    largest_init = Fraction(0)
    for init in spec.init_containers:
        gpus = _container_gpus(init.resources.requests, init.resources.limits)
        if init.restart_policy == "Always":
            total += gpus
        else:
            largest_init = max(largest_init, gpus)
    overhead = _quantity(pod.spec.overhead, GPU) if isinstance(pod, UnboundPod) else Fraction(0)
    return max(total, largest_init) + overhead


def room_on(node: Node, bound: Iterable[Pod], *, reserved: Iterable[Fraction] = ()) -> Room:
    """The node's allocatable GPUs and pods minus the non-terminal pods bound to it (and the
    GPUs of ``reserved`` pods we bound that the pod watch has not shown yet)."""
    allocatable = node.status.allocatable or node.status.capacity
    gpu_capacity = _quantity(allocatable, GPU)
    pod_capacity = int(_quantity(allocatable, "pods"))
    gpus, pods = gpu_capacity, pod_capacity
    for pod in bound:
        if pod.status.phase not in TERMINAL_PHASES:
            gpus -= pod_gpus(pod)
            pods -= 1
    for extra in reserved:
        gpus -= extra
        pods -= 1
    return Room(gpus, pods, gpu_capacity, pod_capacity)


# The node lifecycle controller's taints that mirror a node's Ready condition (a moment late).
CONDITION_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


def node_is_ready(node: Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def node_settled_ready(node: Node) -> bool:
    """Ready, and the lifecycle controller has lifted its not-ready taints (a node that has
    just turned Ready still carries them for a moment, and they would turn every pod away)."""
    return node_is_ready(node) and not any(t.key in CONDITION_TAINTS for t in node.spec.taints)


def node_state_misfit(node: Node) -> Misfit | None:
    """The node as a whole: Ready and schedulable (the same answer for every pod)."""
    name = node.metadata.name
    if not node_is_ready(node):
        return Misfit(f"the virtual node {name} is not Ready", lasting=False)
    if node.spec.unschedulable:
        return Misfit(f"the virtual node {name} is cordoned (unschedulable)", lasting=False)
    return None


def misfit(
    pod: UnboundPod,
    node: Node,
    room: Room,
    *,
    own_taint: tuple[str, str, str] | None,
) -> Misfit | None:
    """None when ``pod`` may be bound to ``node`` now, else why not."""
    name = node.metadata.name
    state = node_state_misfit(node)
    if state is not None:
        return state
    try:
        check_pod(pod)
    except InvalidSpec as exc:
        return Misfit(f"vk-trio cannot run this pod: {exc}", lasting=True)
    labels = node.metadata.labels
    for key, value in sorted(pod.spec.node_selector.items()):
        if labels.get(key) != value:
            return Misfit(f"nodeSelector {key}={value} excludes the virtual node {name}", True)
    affinity = pod.spec.affinity
    required = (
        affinity.node_affinity.required_during_scheduling_ignored_during_execution
        if affinity is not None and affinity.node_affinity is not None
        else None
    )
    if required is not None and not any(
        _term_matches(term, labels, name) for term in required.node_selector_terms
    ):
        return Misfit(
            f"required node affinity ({describe_terms(required.node_selector_terms)}) "
            f"excludes the virtual node {name}",
            lasting=True,
        )
    for taint in node.spec.taints:
        if taint.effect not in ENFORCED_EFFECTS:
            continue
        if own_taint == (taint.key, taint.value, taint.effect) and taint.effect != "NoExecute":
            continue
        if not any(tolerates(t, taint) for t in pod.spec.tolerations):
            return Misfit(
                f"the pod does not tolerate the taint {describe_taint(taint)} of the virtual "
                f"node {name}",
                lasting=True,
            )
    gpus = pod_gpus(pod)
    if gpus > room.gpu_capacity:
        return Misfit(
            f"the pod asks for {_num(gpus)} {GPU}, more than the virtual node {name} has "
            f"({_num(room.gpu_capacity)})",
            lasting=True,
        )
    if gpus > room.gpus:
        return Misfit(
            f"the virtual node {name} is full: its {_num(room.gpu_capacity)} {GPU} are taken",
            lasting=False,
        )
    if room.pods < 1:
        return Misfit(
            f"the virtual node {name} is full: it runs its {room.pod_capacity} pods", False
        )
    return None


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes' ToleratesTaint: effect (empty: all), key (empty with Exists: all), value."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator in ("", "Equal"):
        return bool(toleration.key) and toleration.value == taint.value
    return False


def _term_matches(term: NodeSelectorTerm, labels: Mapping[str, str], node_name: str) -> bool:
    if not term.match_expressions and not term.match_fields:
        return False  # an empty term matches no node (k8s.io/component-helpers nodeaffinity)
    fields = {"metadata.name": node_name}
    return all(_matches(r, labels) for r in term.match_expressions) and all(
        _matches(r, fields) for r in term.match_fields
    )


def _matches(requirement: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    op, key, values = requirement.operator, requirement.key, requirement.values
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def describe_terms(terms: Sequence[NodeSelectorTerm]) -> str:
    def one(term: NodeSelectorTerm) -> str:
        parts = [
            f"{r.key} {r.operator}{' ' + ','.join(r.values) if r.values else ''}"
            for r in (*term.match_expressions, *term.match_fields)
        ]
        return " and ".join(parts) or "an empty term"

    return " or ".join(one(t) for t in terms) or "no term"


def describe_taint(taint: Taint) -> str:
    value = f"={taint.value}" if taint.value else ""
    return f"{taint.key}{value}:{taint.effect}"


def _num(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
