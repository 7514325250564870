"""Settings the agent chooses at start when they are not given: the namespace of its own
objects comes from the ServiceAccount in a pod (the chart passes no --namespace), else it is the
seeds' kube-system; a named namespace always wins."""

from __future__ import annotations

from vk_trio.config import load_config
from vk_trio.daemon import agent_namespace
from vk_trio.kube.auth import IN_CLUSTER, Credentials


def credentials(source: str, namespace: str) -> Credentials:
    return Credentials(
        server="https://10.96.0.1:443",
        namespace=namespace,
        ca_pem=None,
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        client_cert_pem=None,
        client_key_pem=None,
        token_source=None,
        source=source,
    )


def test_in_a_pod_the_namespace_is_the_service_accounts() -> None:
    config = load_config(env={})
    assert agent_namespace(config, credentials(IN_CLUSTER, "gpu-system")).namespace == "gpu-system"


def test_from_a_kubeconfig_the_namespace_is_kube_system_whatever_the_context_says() -> None:
    config = load_config(env={})
    found = agent_namespace(config, credentials("/home/u/.kube/config (context ci)", "team-a"))
    assert found.namespace == "kube-system"


def test_a_namespace_given_as_flag_or_env_wins() -> None:
    config = load_config(env={"VK_NAMESPACE": "ops"})
    assert agent_namespace(config, credentials(IN_CLUSTER, "gpu-system")).namespace == "ops"
