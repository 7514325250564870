"""In-cluster credentials, and the order in which resolve_credentials looks for credentials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio.testing
from kubernetes.client import Configuration
from kubernetes.config.incluster_config import InClusterConfigLoader

from tests.kube.test_auth_support import single_context_config, write_kubeconfig
from vk_trio.errors import AuthError
from vk_trio.kube.auth import Credentials, resolve_credentials, resolve_in_cluster


def service_account(root: Path, *, token: str = "sa-token", namespace: str | None = "jobs") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(token)
    (root / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
    if namespace is not None:
        (root / "namespace").write_text(namespace + "\n")
    return root


POD_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


async def header(credentials: Credentials) -> str | None:
    assert credentials.token_source is not None
    return await credentials.token_source.authorization()


async def test_in_cluster_credentials_come_from_the_environment_and_the_service_account(
    tmp_path: Path,
) -> None:
    root = service_account(tmp_path / "sa")
    credentials = await resolve_credentials(env=POD_ENV, in_cluster_root=root)
    assert credentials.server == "https://10.96.0.1:443"
    assert credentials.namespace == "jobs"
    assert credentials.ca_pem == (root / "ca.crt").read_bytes()
    assert credentials.source == "in-cluster"
    assert await header(credentials) == "Bearer sa-token"


def official_in_cluster(root: Path) -> tuple[str, bytes, str]:
    """Host, CA bytes and Authorization value from the official client's loader."""
    configuration = Configuration()
    loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
        token_filename=str(root / "token"), cert_filename=str(root / "ca.crt"), environ=POD_ENV
    )
    loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    ca = Path(str(configuration.ssl_ca_cert)).read_bytes()
    return configuration.host, ca, configuration.api_key["BearerToken"]


async def test_in_cluster_agrees_with_the_official_client(tmp_path: Path) -> None:
    root = service_account(tmp_path / "sa")
    host, ca, authorization = official_in_cluster(root)
    ours = await resolve_credentials(env=POD_ENV, in_cluster_root=root)
    assert (ours.server, ours.ca_pem) == (host, ca)
    assert (await header(ours) or "").lower() == authorization.lower()  # it writes "bearer"


def test_an_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    credentials = resolve_in_cluster(env=env, root=service_account(tmp_path))
    assert credentials.server == "https://[fd00::1]:6443"


def test_missing_namespace_and_ca_files_fall_back_to_default_and_the_system_store(
    tmp_path: Path,
) -> None:
    root = service_account(tmp_path, namespace=None)
    (root / "ca.crt").unlink()
    credentials = resolve_in_cluster(env=POD_ENV, root=root)
    assert (credentials.namespace, credentials.ca_pem) == ("default", None)


async def test_the_service_account_token_is_reread_when_kubelet_rotates_it(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    root = service_account(tmp_path)
    credentials = await resolve_credentials(env=POD_ENV, in_cluster_root=root)
    (root / "token").write_text("rotated")
    assert await header(credentials) == "Bearer sa-token"
    mock_clock.jump(60)
    assert await header(credentials) == "Bearer rotated"


def test_a_service_host_without_a_port_is_an_auth_error(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="KUBERNETES_SERVICE_PORT"):
        resolve_in_cluster(env={"KUBERNETES_SERVICE_HOST": "h"}, root=service_account(tmp_path))


class Places:
    """An explicit kubeconfig, a KUBECONFIG file, ~/.kube/config and a service account."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.sa = service_account(tmp_path / "sa")
        for name, where in (
            ("explicit", tmp_path / "explicit"),
            ("env", tmp_path / "env"),
            ("home", self.home / ".kube" / "config"),
        ):
            document = single_context_config(cluster={"server": f"https://{name}"})
            write_kubeconfig(where, document)
        self.explicit, self.env_file = tmp_path / "explicit", tmp_path / "env"

    async def server(self, *, kubeconfig: str | None = None, **env: str) -> str:
        environ = {"HOME": str(self.home), **env}
        credentials = await resolve_credentials(
            kubeconfig=kubeconfig, env=environ, in_cluster_root=self.sa
        )
        return credentials.server


async def test_an_explicit_kubeconfig_wins_over_everything(tmp_path: Path) -> None:
    places = Places(tmp_path)
    server = await places.server(
        kubeconfig=str(places.explicit), KUBECONFIG=str(places.env_file), **POD_ENV
    )
    assert server == "https://explicit"


async def test_kubeconfig_env_wins_over_in_cluster_and_home(tmp_path: Path) -> None:
    places = Places(tmp_path)
    assert await places.server(KUBECONFIG=str(places.env_file), **POD_ENV) == "https://env"


async def test_in_cluster_wins_over_the_home_kubeconfig(tmp_path: Path) -> None:
    places = Places(tmp_path)
    assert await places.server(**POD_ENV) == "https://10.96.0.1:443"
    assert await places.server() == "https://home"


async def test_a_kubeconfig_env_naming_only_missing_files_does_not_fall_back_to_home(
    tmp_path: Path,
) -> None:
    places = Places(tmp_path)
    missing = os.pathsep.join([str(tmp_path / "nope"), "", str(tmp_path / "nada")])
    assert await places.server(KUBECONFIG=missing, **POD_ENV) == "https://10.96.0.1:443"
    with pytest.raises(AuthError, match=r"no Kubernetes credentials found: KUBECONFIG="):
        await places.server(KUBECONFIG=missing)


async def test_kubeconfig_env_skips_missing_files_and_merges_the_rest(tmp_path: Path) -> None:
    places = Places(tmp_path)
    listed = os.pathsep.join([str(tmp_path / "nope"), str(places.env_file), str(places.explicit)])
    assert await places.server(KUBECONFIG=listed) == "https://env"


async def test_no_credentials_anywhere_is_an_auth_error_saying_where_it_looked(
    tmp_path: Path,
) -> None:
    with pytest.raises(AuthError) as caught:
        await resolve_credentials(env={"HOME": str(tmp_path)}, in_cluster_root=tmp_path / "sa")
    message = str(caught.value)
    assert str(tmp_path / ".kube" / "config") in message
    assert "KUBERNETES_SERVICE_HOST" in message


async def test_a_missing_explicit_kubeconfig_is_an_auth_error(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="given explicitly"):
        await resolve_credentials(kubeconfig=str(tmp_path / "nope"), env={})


async def test_a_context_can_be_chosen_and_tilde_paths_expand_with_home(tmp_path: Path) -> None:
    places = Places(tmp_path)
    credentials = await resolve_credentials(
        kubeconfig="~/.kube/config", context="ctx", env={"HOME": str(places.home)}
    )
    assert credentials.server == "https://home"
    assert credentials.source.endswith("context ctx")
