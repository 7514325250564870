"""The scheduler's view of a pod, and the Binding subresource: what burst (pods/burst.py) needs.

The pod cache's ``Pod`` leaves the scheduling fields out (nodeSelector, affinity, tolerations,
scheduling gates): a pod bound to our node has been placed already, and every field costs memory
at 10,000 pods. An *unbound* pod is the opposite case: before binding it to the virtual node,
burst makes the checks the scheduler would have made, so ``UnboundPod`` decodes those fields too.
It is a ``Pod`` (a subclass), so everything that reads pods (``translate.check_pod``) reads it.

``bind`` is the scheduler's own write: ``POST pods/<name>/binding`` with the pod's UID as a
precondition, so a pod deleted and recreated under the same name is never bound by mistake. The
Binding's annotations are copied onto the pod in the same write, on every Kubernetes version, and
its labels since 1.35 (the PodTopologyLabelsAdmission gate, on by default); that one request is
how the pod becomes bound *and* says why. The API server answers 409 when the pod is bound
already (by the scheduler, or by another virtual node's controller): ``Bound.ALREADY``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import msgspec

from vk_trio.errors import Conflict, NotFound
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import K, Pod, PodSpec, Toleration, _dict, _list
from vk_trio.kube.resources import Resource
from vk_trio.pacing import TokenBucket


class NodeSelectorRequirement(K):
    key: str
    operator: str
    values: Sequence[str] = _list()


class NodeSelectorTerm(K):
    match_expressions: Sequence[NodeSelectorRequirement] = _list()
    match_fields: Sequence[NodeSelectorRequirement] = _list()


class NodeSelector(K):
    node_selector_terms: Sequence[NodeSelectorTerm] = _list()


class NodeAffinity(K):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None


class Affinity(K):
    node_affinity: NodeAffinity | None = None


class SchedulingGate(K):
    name: str


class UnboundPodSpec(PodSpec):
    node_selector: dict[str, str] = _dict()
    affinity: Affinity | None = None
    tolerations: Sequence[Toleration] = _list()
    scheduling_gates: Sequence[SchedulingGate] = _list()
    overhead: dict[str, str] = _dict()


class UnboundPod(Pod):
    spec: UnboundPodSpec = msgspec.field(default_factory=UnboundPodSpec)


UNBOUND_PODS = Resource("api/v1", "pods", True, UnboundPod, "Pod")
UNBOUND = "spec.nodeName="  # the field selector of pods no node has yet


class Bound(enum.Enum):
    NOW = "bound"  # this request bound it
    ALREADY = "already bound"  # 409: someone bound it first, or it was recreated (uid)
    GONE = "gone"  # 404: the pod no longer exists


async def bind(
    client: KubeClient,
    pod: Pod,
    *,
    node: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    limiter: TokenBucket | None = None,
) -> Bound:
    """Bind ``pod`` to ``node`` as a scheduler does, with labels and annotations for the pod.

    Other API errors (403, 422, 5xx after retries) raise: the caller reports them.
    """
    meta = pod.metadata
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {
            "name": meta.name,
            "uid": meta.uid,
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    path = UNBOUND_PODS.path(namespace=meta.namespace, name=meta.name, subresource="binding")
    try:
        # A repeat after a lost answer is safe: a second binding gets 409 instead of acting twice.
        await client.request(
            "POST", path, body=msgspec.json.encode(body), idempotent=True, limiter=limiter
        )
    except Conflict:
        return Bound.ALREADY
    except NotFound:
        return Bound.GONE
    return Bound.NOW
