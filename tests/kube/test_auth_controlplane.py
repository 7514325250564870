"""Credentials resolved by vk_trio.kube.auth authenticate against a real kube-apiserver.

Unit tests check that kubeconfigs, exec plugins and service-account files are read as kubectl
reads them; these check that the result is something the API server accepts, as the identity
we meant (asked of the server with a SelfSubjectReview), and that a token file rewritten under
a running client is picked up after a 401 without restarting anything.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from tests.controlplane.launcher import TOKEN_USER, ControlPlane
from tests.kube.controlplane_support import FAST_BACKOFF
from vk_trio.errors import Unauthorized
from vk_trio.kube.auth import Credentials, resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.resources import CONFIGMAPS

pytestmark = pytest.mark.controlplane

LIMIT = 30.0  # seconds any one test may take
EXEC_API = "client.authentication.k8s.io/v1"

PLUGIN = """\
import json, os, sys
from pathlib import Path

info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
if info["apiVersion"] != "client.authentication.k8s.io/v1" or info["spec"]["interactive"]:
    sys.exit("unexpected KUBERNETES_EXEC_INFO")
with Path(sys.argv[2]).open("a") as runs:
    runs.write("ran\\n")
status = json.loads(Path(sys.argv[1]).read_text())
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


async def who_am_i(client: KubeClient) -> tuple[str, list[str]]:
    """The user and groups the API server authenticated us as."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    response = await client.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body=json.dumps(review).encode(),
    )
    user = response.json()["status"]["userInfo"]
    return user["username"], user.get("groups", [])


async def assert_can_list_namespaces(client: KubeClient) -> None:
    response = await client.request("GET", "/api/v1/namespaces")
    names = {item["metadata"]["name"] for item in response.json()["items"]}
    assert {"default", "kube-system"} <= names


def write_kubeconfig(path: Path, cp: ControlPlane, user: dict[str, Any]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "cp",
                "cluster": {"server": cp.server, "certificate-authority": str(cp.ca_pem)},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "cp", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def exec_kubeconfig(tmp_path: Path, cp: ControlPlane, status: dict[str, str]) -> Path:
    """A kubeconfig whose user is a Python exec plugin printing ``status`` as its credential."""
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    credential = tmp_path / "credential.json"
    credential.write_text(json.dumps(status))
    credential.chmod(0o600)
    user = {
        "exec": {
            "apiVersion": EXEC_API,
            "command": sys.executable,
            "args": [str(script), str(credential), str(tmp_path / "runs")],
            "interactiveMode": "Never",
        }
    }
    return write_kubeconfig(tmp_path / "exec.kubeconfig", cp, user)


def plugin_runs(tmp_path: Path) -> int:
    return len((tmp_path / "runs").read_text().splitlines())


async def test_exec_plugin_token_authenticates_as_the_tokens_user(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig = exec_kubeconfig(tmp_path, controlplane, {"token": controlplane.token})
    with trio.fail_after(LIMIT):
        credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})
        assert credentials.client_cert_pem is None
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            await assert_can_list_namespaces(client)
            user, groups = await who_am_i(client)
            await assert_can_list_namespaces(client)
    assert user == TOKEN_USER
    assert "system:masters" in groups
    assert plugin_runs(tmp_path) == 1, "a credential without expiry is reused, not re-fetched"
    assert controlplane.token not in repr(credentials)


async def test_exec_plugin_client_certificate_authenticates_as_the_certificates_subject(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    cert, key = controlplane.mint_client_cert("exec-user", ["system:masters"])
    status = {
        "clientCertificateData": cert.read_text(),
        "clientKeyData": key.read_text(),
    }
    kubeconfig = exec_kubeconfig(tmp_path, controlplane, status)
    with trio.fail_after(LIMIT):
        credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})
        assert credentials.client_cert_pem == cert.read_bytes()
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            await assert_can_list_namespaces(client)
            user, groups = await who_am_i(client)
    assert user == "exec-user"
    assert "system:masters" in groups
    assert plugin_runs(tmp_path) == 1


async def test_rewritten_token_file_is_used_after_a_401_by_the_same_client(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-the-right-token\n")
    user = {"tokenFile": "token"}  # relative to the kubeconfig's directory
    kubeconfig = write_kubeconfig(tmp_path / "file.kubeconfig", controlplane, user)
    with trio.fail_after(LIMIT):
        credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            with pytest.raises(Unauthorized) as caught:
                await client.request("GET", "/api/v1/namespaces")
            assert caught.value.code == 401
            assert client.sent["GET"] == 2, "one retry after re-reading the file, no more"

            # As kubelet rotates a projected token: write aside, then rename over.
            fresh = tmp_path / "token.new"
            fresh.write_text(controlplane.token + "\n")
            fresh.replace(token_file)

            await assert_can_list_namespaces(client)
            user_name, _ = await who_am_i(client)
    assert user_name == TOKEN_USER


async def test_token_file_rotated_before_use_costs_one_401_and_the_call_succeeds(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("the-previous-token")
    kubeconfig = write_kubeconfig(
        tmp_path / "file.kubeconfig", controlplane, {"tokenFile": str(token_file)}
    )
    with trio.fail_after(LIMIT):
        credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})  # reads it
        token_file.write_text(controlplane.token)  # rotated within the re-read period
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            await assert_can_list_namespaces(client)
            assert client.sent["GET"] == 2, "the stale token's 401, then the fresh token"
            await assert_can_list_namespaces(client)
            assert client.sent["GET"] == 3


async def test_exec_plugin_is_run_again_after_a_401_and_its_new_token_is_used(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig = exec_kubeconfig(tmp_path, controlplane, {"token": "revoked-token"})
    with trio.fail_after(LIMIT):
        credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})
        assert plugin_runs(tmp_path) == 1
        (tmp_path / "credential.json").write_text(json.dumps({"token": controlplane.token}))
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            await assert_can_list_namespaces(client)
            user, _ = await who_am_i(client)
            sent = dict(client.sent)
    assert user == TOKEN_USER
    assert plugin_runs(tmp_path) == 2
    assert sent == {"GET": 2, "POST": 1}


async def test_in_cluster_service_account_files_and_environment_authenticate(
    controlplane: ControlPlane, tmp_path: Path, namespace: str
) -> None:
    root = tmp_path / "serviceaccount"
    root.mkdir()
    (root / "token").write_text(controlplane.token)
    shutil.copyfile(controlplane.ca_pem, root / "ca.crt")
    (root / "namespace").write_text(namespace)
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(controlplane.ports.apiserver),
        "HOME": str(tmp_path),  # no ~/.kube/config to fall back on
        "PATH": os.environ.get("PATH", ""),
    }
    with trio.fail_after(LIMIT):
        credentials: Credentials = await resolve_credentials(env=env, in_cluster_root=root)
        assert credentials.source == "in-cluster"
        assert credentials.server == controlplane.server
        assert credentials.namespace == namespace
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            await assert_can_list_namespaces(client)
            user, _ = await who_am_i(client)
            # The namespace file is the default for namespaced calls, as in a pod.
            listed = await client.list(CONFIGMAPS, namespace=credentials.namespace)
    assert user == TOKEN_USER
    assert "kube-root-ca.crt" in {cm.metadata.name for cm in listed.items}


async def test_in_cluster_token_is_not_used_when_a_kubeconfig_is_named(
    controlplane: ControlPlane, tmp_path: Path
) -> None:
    """KUBECONFIG wins over the pod's own account, as with kubectl."""
    root = tmp_path / "serviceaccount"
    root.mkdir()
    (root / "token").write_text("a-token-the-server-rejects")
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(controlplane.ports.apiserver),
        "KUBECONFIG": str(controlplane.kubeconfig),
    }
    with trio.fail_after(LIMIT):
        credentials = await resolve_credentials(env=env, in_cluster_root=root)
        async with KubeClient(credentials, backoff=FAST_BACKOFF) as client:
            user, _ = await who_am_i(client)
    assert user == "admin"
