"""Which labels a node may set on its own Node (NodeRestriction), and who sets the others."""

from __future__ import annotations

import pytest

from vk_trio.config import load_config
from vk_trio.node.manifest import node_labels, node_may_set, node_object


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("type", True),
        ("vk-trio.io/provider", True),
        ("example.com/team", True),
        ("kubernetes.io/hostname", True),
        ("kubernetes.io/os", True),
        ("kubernetes.io/arch", True),
        ("topology.kubernetes.io/zone", True),
        ("node.kubernetes.io/exclude-from-external-load-balancers", True),
        ("kubelet.kubernetes.io/anything", True),
        ("x.kubelet.kubernetes.io/anything", True),
        ("kubernetes.io/role", False),
        ("node-role.kubernetes.io/agent", False),
        ("k8s.io/anything", False),
        ("foo.k8s.io/anything", False),
        ("notkubernetes.io/x", True),
    ],
)
def test_node_restriction_rules_for_a_nodes_own_labels(key: str, allowed: bool) -> None:
    assert node_may_set(key) is allowed


def test_the_seed_labels_a_node_may_not_set_are_only_its_role() -> None:
    config = load_config(flags={"node_name": "n"}, env={})
    refused = [k for k in node_labels(config) if not node_may_set(k)]
    assert refused == ["kubernetes.io/role"]


def test_a_node_object_carries_the_labels_it_is_given() -> None:
    config = load_config(flags={"node_name": "n"}, env={})
    own = {k: v for k, v in node_labels(config).items() if node_may_set(k)}
    body = node_object(config, node_ip="127.0.0.1", labels=own)
    assert body["metadata"]["labels"] == own
    assert "kubernetes.io/role" in node_object(config, node_ip="127.0.0.1")["metadata"]["labels"]
