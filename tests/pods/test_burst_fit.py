"""burst_fit: the scheduler's node checks that burst makes before binding a pod to its node."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import msgspec
import pytest

from vk_trio.kube.models import Node, Pod
from vk_trio.kube.scheduling import UnboundPod
from vk_trio.pods.burst_fit import (
    Room,
    misfit,
    node_settled_ready,
    pod_gpus,
    room_on,
    tolerates,
)

OWN_TAINT = ("virtual-kubelet.io/provider", "runpod", "NoSchedule")


def node(**overrides: Any) -> Node:
    raw: dict[str, Any] = {
        "metadata": {"name": "vk", "labels": {"type": "virtual-kubelet", "gpu-count": "8"}},
        "spec": {"taints": [{"key": OWN_TAINT[0], "value": OWN_TAINT[1], "effect": OWN_TAINT[2]}]},
        "status": {
            "allocatable": {"nvidia.com/gpu": "4", "pods": "3"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value}
    return msgspec.convert(raw, Node)


def pod(gpus: str = "1", **spec: Any) -> UnboundPod:
    raw = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": gpus}}}
            ],
            **spec,
        },
    }
    return msgspec.convert(raw, UnboundPod)


def room(gpus: int = 4, pods: int = 3) -> Room:
    return Room(Fraction(gpus), pods, Fraction(4), 3)


def why(p: UnboundPod, n: Node | None = None, r: Room | None = None) -> str | None:
    found = misfit(p, n or node(), r or room(), own_taint=OWN_TAINT)
    return None if found is None else found.message


def test_a_plain_gpu_pod_fits_and_the_nodes_own_noschedule_taint_is_waived() -> None:
    assert why(pod()) is None


def test_node_selector_names_the_label_that_excludes_the_node() -> None:
    assert why(pod(nodeSelector={"gpu": "a100"})) == (
        "nodeSelector gpu=a100 excludes the virtual node vk"
    )
    assert why(pod(nodeSelector={"type": "virtual-kubelet"})) is None


@pytest.mark.parametrize(
    ("expression", "fits"),
    [
        ({"key": "type", "operator": "In", "values": ["virtual-kubelet"]}, True),
        ({"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, True),
        ({"key": "type", "operator": "Exists"}, True),
        ({"key": "type", "operator": "DoesNotExist"}, False),
        ({"key": "gpu-count", "operator": "Gt", "values": ["4"]}, True),
        ({"key": "gpu-count", "operator": "Lt", "values": ["4"]}, False),
        ({"key": "gpu-count", "operator": "Gt", "values": ["x"]}, False),
    ],
)
def test_required_node_affinity_operators(expression: dict[str, Any], fits: bool) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expression]}]
            }
        }
    }
    found = why(pod(affinity=affinity))
    assert (found is None) is fits, found
    if not fits:
        assert found is not None and "required node affinity" in found


def test_affinity_terms_are_ored_and_match_fields_see_the_node_name() -> None:
    terms = [
        {"matchExpressions": [{"key": "type", "operator": "In", "values": ["local"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["vk"]}]},
    ]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }
    assert why(pod(affinity=affinity)) is None
    only_local = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms[:1]}
        }
    }
    assert "type In local" in (why(pod(affinity=only_local)) or "")


def test_another_taint_must_be_tolerated_and_an_own_noexecute_taint_too() -> None:
    tainted = node(
        spec={"taints": [{"key": "maintenance", "value": "true", "effect": "NoSchedule"}]}
    )
    assert why(pod(), tainted) == (
        "the pod does not tolerate the taint maintenance=true:NoSchedule of the virtual node vk"
    )
    tolerating = pod(tolerations=[{"key": "maintenance", "operator": "Exists"}])
    assert why(tolerating, tainted) is None
    soft = node(spec={"taints": [{"key": "x", "effect": "PreferNoSchedule"}]})
    assert why(pod(), soft) is None
    noexecute = ("virtual-kubelet.io/provider", "runpod", "NoExecute")
    strict = node(
        spec={"taints": [{"key": noexecute[0], "value": "runpod", "effect": "NoExecute"}]}
    )
    assert misfit(pod(), strict, room(), own_taint=noexecute) is not None


def test_toleration_matching_follows_kubernetes() -> None:
    from vk_trio.kube.models import Taint, Toleration

    taint = Taint(key="k", value="v", effect="NoSchedule")
    assert tolerates(Toleration(key="k", operator="Equal", value="v"), taint)
    assert tolerates(Toleration(key="k", value="v", effect="NoSchedule"), taint)
    assert not tolerates(Toleration(key="k", value="w"), taint)
    assert not tolerates(Toleration(key="k", value="v", effect="NoExecute"), taint)
    assert tolerates(Toleration(operator="Exists"), taint)
    assert not tolerates(Toleration(value="v"), taint)  # Equal with an empty key matches nothing


def test_capacity_counts_gpus_and_pod_slots_of_the_pods_already_bound() -> None:
    assert why(pod("2"), r=room(gpus=1)) == (
        "the virtual node vk is full: its 4 nvidia.com/gpu are taken"
    )
    assert why(pod("8")) == (
        "the pod asks for 8 nvidia.com/gpu, more than the virtual node vk has (4)"
    )
    assert why(pod("0"), r=room(pods=0)) == "the virtual node vk is full: it runs its 3 pods"
    bound = [
        msgspec.convert({**msgspec.to_builtins(pod("1")), "status": {"phase": p}}, Pod)
        for p in ("Running", "Succeeded", "Pending")
    ]
    left = room_on(node(), bound, reserved=[Fraction(1)])
    assert (left.gpus, left.pods) == (Fraction(1), 0)


def test_the_node_must_be_ready_and_not_cordoned() -> None:
    not_ready = node(status={"conditions": [{"type": "Ready", "status": "False"}]})
    assert why(pod(), not_ready) == "the virtual node vk is not Ready"
    cordoned = node(spec={"unschedulable": True})
    assert why(pod(), cordoned) == "the virtual node vk is cordoned (unschedulable)"


def test_a_node_just_ready_is_settled_only_once_the_not_ready_taint_is_lifted() -> None:
    assert node_settled_ready(node())
    assert not node_settled_ready(
        node(status={"conditions": [{"type": "Ready", "status": "False"}]})
    )
    lagging = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    assert not node_settled_ready(node(spec={"taints": [lagging]}))


def test_a_pod_vk_trio_cannot_run_stays_local_with_the_reason() -> None:
    two = pod(containers=[{"name": "a", "image": "i"}, {"name": "b", "image": "i"}])
    found = misfit(two, node(), room(), own_taint=OWN_TAINT)
    assert found is not None and found.lasting
    assert found.message.startswith("vk-trio cannot run this pod: spec.containers[1] (b)")


def test_pod_gpus_is_the_larger_of_containers_and_init_plus_sidecars_and_overhead() -> None:
    raw = {
        "containers": [
            {"name": "a", "resources": {"requests": {"nvidia.com/gpu": "1"}}},
            {"name": "b", "resources": {"limits": {"nvidia.com/gpu": "1"}}},
        ],
        "initContainers": [
            {"name": "i", "resources": {"limits": {"nvidia.com/gpu": "3"}}},
            {
                "name": "s",
                "restartPolicy": "Always",
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            },
        ],
        "overhead": {"nvidia.com/gpu": "1"},
    }
    assert pod_gpus(msgspec.convert({"spec": raw}, UnboundPod)) == 4
