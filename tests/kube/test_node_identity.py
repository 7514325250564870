"""The node identity's request and the choice of identity (the control-plane side is in
test_node_identity_controlplane.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from vk_trio.config import load_config
from vk_trio.daemon import uses_node_identity
from vk_trio.errors import ConfigError
from vk_trio.kube.auth import Credentials
from vk_trio.kube.auth_tokens import StaticTokenSource
from vk_trio.kube.certs import CertInfo
from vk_trio.kube.csr import Issued
from vk_trio.kube.node_identity import client_certificate_spec, node_credentials
from vk_trio.logs import scrub

BASE = Credentials(
    server="https://10.96.0.1:443",
    namespace="kube-system",
    ca_pem=b"ca",
    insecure_skip_tls_verify=False,
    tls_server_name=None,
    client_cert_pem=None,
    client_key_pem=None,
    token_source=StaticTokenSource("sa-token"),
    source="in-cluster",
)


def test_the_request_is_the_one_the_csrapproving_controller_approves() -> None:
    spec = client_certificate_spec("gpu-1")
    assert spec.signer == "kubernetes.io/kube-apiserver-client-kubelet"
    assert spec.common_name == "system:node:gpu-1"
    assert spec.organizations == ("system:nodes",)
    assert set(spec.usages) == {"digital signature", "client auth"}
    assert spec.sans == ()  # a node client certificate carries no SANs
    assert spec.name_prefix == "gpu-1-client-"


def test_the_node_credentials_are_the_certificate_alone_and_the_key_is_redacted() -> None:
    key = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    now = datetime.now(UTC)
    info = CertInfo(
        common_name="system:node:gpu-1",
        organizations=("system:nodes",),
        not_before=now,
        not_after=now,
        self_issued=False,
    )
    issued = Issued(key_pem=key, cert_pem=b"cert", info=info, csr_name="gpu-1-client-x")
    node = node_credentials(BASE, issued)
    assert node.token_source is None  # a bearer token would win over the certificate
    assert (node.client_cert_pem, node.client_key_pem) == (b"cert", key)
    assert (node.server, node.ca_pem) == (BASE.server, BASE.ca_pem)
    assert "c2VjcmV0LWtleS1tYXRlcmlhbA" not in scrub(f"oops {key.decode()}")
    assert "redacted" in repr(node) and "c2VjcmV0" not in repr(node)


@pytest.mark.parametrize(
    ("setting", "source", "bootstrap"),
    [
        ("auto", "in-cluster", True),
        ("auto", "kubeconfig /etc/vk/kubeconfig, context edge", False),
        ("bootstrap", "kubeconfig /etc/vk/bootstrap.kubeconfig, context edge", True),
        ("kubeconfig", "in-cluster", False),
    ],
)
def test_auto_bootstraps_in_a_pod_and_uses_a_kubeconfig_as_given(
    setting: str, source: str, bootstrap: bool
) -> None:
    config = load_config(flags={"node_identity": setting}, env={})
    assert uses_node_identity(config, dataclasses.replace(BASE, source=source)) is bootstrap


def test_node_identity_settings_are_checked() -> None:
    assert load_config(env={"VK_NODE_IDENTITY": "bootstrap"}).node_identity == "bootstrap"
    with pytest.raises(ConfigError, match="--node-identity"):
        load_config(flags={"node_identity": "serviceaccount"}, env={})
    with pytest.raises(ConfigError, match="--node-identity-wait"):
        load_config(flags={"node_identity_wait": "0"}, env={})
