"""exec credential plugins: run without blocking, cached until expiry, failures explained."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import yaml
from kubernetes.client import Configuration
from kubernetes.config import load_kube_config

from tests.kube.test_auth_support import (
    pki,
    single_context_config,
    write_kubeconfig,
    write_plugin,
)
from vk_trio.errors import AuthError
from vk_trio.kube import auth_exec
from vk_trio.kube.auth import Credentials, resolve_credentials
from vk_trio.kube.auth_exec import parse_rfc3339
from vk_trio.kube.auth_tokens import EXEC_RETRY_DELAY, ExecCredentialSource
from vk_trio.kube.kubeconfig_entries import ExecConfig

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

PLUGIN = """\
import datetime, json, os, pathlib, sys
state = pathlib.Path(os.environ["PLUGIN_STATE"])
run = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(run))
state.with_suffix(".info").write_text(os.environ.get("KUBERNETES_EXEC_INFO", ""))
state.with_suffix(".stdin").write_text(sys.stdin.read())
status = {}
if os.environ.get("PLUGIN_TOKEN"):
    status["token"] = f"{os.environ['PLUGIN_TOKEN']}-{run}"
if os.environ.get("PLUGIN_CERTS"):
    pairs = json.loads(os.environ["PLUGIN_CERTS"])
    cert, key = pairs[(run - 1) % len(pairs)]
    status["clientCertificateData"], status["clientKeyData"] = cert, key
if os.environ.get("PLUGIN_TTL"):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=float(os.environ["PLUGIN_TTL"]))
    status["expirationTimestamp"] = expiry.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
api = os.environ.get("PLUGIN_ANSWER_API", os.environ["PLUGIN_API"])
print(json.dumps({"apiVersion": api, "kind": "ExecCredential", "status": status}))
"""


class Plugin:
    """A Python exec plugin configured through its kubeconfig ``env``."""

    def __init__(self, tmp_path: Path, *, body: str = PLUGIN) -> None:
        self.dir = tmp_path
        self.command = write_plugin(tmp_path, body)
        self.state = tmp_path / "state"

    @property
    def runs(self) -> int:
        return int(self.state.read_text()) if self.state.exists() else 0

    @property
    def exec_info(self) -> dict[str, Any]:
        return dict(json.loads(self.state.with_suffix(".info").read_text()))

    def kubeconfig(
        self,
        env: Mapping[str, str] | None = None,
        /,
        *,
        api: str = V1,
        cluster: dict[str, Any] | None = None,
    ) -> Path:
        plugin: dict[str, Any] = {
            "apiVersion": api,
            "command": str(self.command),
            "args": ["get-token", "--cluster", "x"],
            "env": [
                {"name": "PLUGIN_STATE", "value": str(self.state)},
                {"name": "PLUGIN_API", "value": api},
                *({"name": k, "value": v} for k, v in (env or {}).items()),
            ],
            "interactiveMode": "Never",
            "installHint": "Install it with: pip install our-plugin",
        }
        document = single_context_config(
            cluster=cluster or {"server": "https://127.0.0.1:6443"}, user={"exec": plugin}
        )
        return write_kubeconfig(self.dir / "kubeconfig", document)

    async def resolve(self, **env: str) -> Credentials:
        path = self.kubeconfig(env)
        return await resolve_credentials(kubeconfig=str(path), env=_base_env(self.dir))


def _base_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


async def _authorization(credentials: Credentials) -> str | None:
    assert credentials.token_source is not None
    return await credentials.token_source.authorization()


@pytest.mark.parametrize("api", [V1, V1BETA1])
async def test_an_exec_token_is_used_then_cached_until_shortly_before_it_expires(
    tmp_path: Path, mock_clock: trio.testing.MockClock, api: str
) -> None:
    plugin = Plugin(tmp_path)
    path = plugin.kubeconfig({"PLUGIN_TOKEN": "tok", "PLUGIN_TTL": "300"}, api=api)
    credentials = await resolve_credentials(kubeconfig=str(path), env=_base_env(tmp_path))
    assert plugin.runs == 1  # run once up front, so a broken plugin fails at start-up
    assert await _authorization(credentials) == "Bearer tok-1"
    mock_clock.jump(250)
    assert await _authorization(credentials) == "Bearer tok-1"
    assert plugin.runs == 1
    mock_clock.jump(30)  # 280 s: inside the refresh margin before the 300 s expiry
    assert await _authorization(credentials) == "Bearer tok-2"
    assert plugin.runs == 2


async def test_a_credential_without_expiry_is_kept_until_invalidated_after_a_401(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    plugin = Plugin(tmp_path)
    credentials = await plugin.resolve(PLUGIN_TOKEN="tok")
    mock_clock.jump(86_400)
    assert await _authorization(credentials) == "Bearer tok-1"
    assert credentials.token_source is not None
    credentials.token_source.invalidate()
    assert await _authorization(credentials) == "Bearer tok-2"


async def test_concurrent_requests_run_an_expired_plugin_only_once(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    plugin = Plugin(tmp_path)
    credentials = await plugin.resolve(PLUGIN_TOKEN="tok")
    assert credentials.token_source is not None
    credentials.token_source.invalidate()
    results: list[str | None] = []

    async def ask() -> None:
        results.append(await _authorization(credentials))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
    assert results == ["Bearer tok-2"] * 5
    assert plugin.runs == 2


async def test_the_plugin_gets_its_args_env_and_exec_info_and_no_stdin(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path)
    await plugin.resolve(PLUGIN_TOKEN="tok")
    info = plugin.exec_info
    assert info == {"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": False}}
    assert plugin.state.with_suffix(".stdin").read_text() == ""


async def test_provide_cluster_info_passes_the_cluster_in_kubernetes_exec_info(
    tmp_path: Path,
) -> None:
    plugin = Plugin(tmp_path)
    cluster = {
        "server": "https://10.0.0.1:6443",
        "certificate-authority-data": "Q0E=",
        "tls-server-name": "kubernetes.internal",
        "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "k8s"}}
        ],
    }
    path = plugin.kubeconfig({"PLUGIN_TOKEN": "tok"}, cluster=cluster)
    document = yaml.safe_load(path.read_text())
    document["users"][0]["user"]["exec"]["provideClusterInfo"] = True
    write_kubeconfig(path, document)
    await resolve_credentials(kubeconfig=str(path), env=_base_env(tmp_path))
    assert plugin.exec_info["spec"]["cluster"] == {
        "server": "https://10.0.0.1:6443",
        "certificate-authority-data": "Q0E=",
        "tls-server-name": "kubernetes.internal",
        "config": {"audience": "k8s"},
    }


async def test_a_failing_plugin_is_an_auth_error_with_its_stderr_but_no_secret(
    tmp_path: Path,
) -> None:
    body = """\
import os, sys
print('{"status": {"token": "stdout-secret-token"}}')
print("login failed for key", os.environ["API_KEY"], file=sys.stderr)
print("debug: token=abcdefghijklmnop1234 eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", file=sys.stderr)
sys.exit(3)
"""
    plugin = Plugin(tmp_path, body=body)
    with pytest.raises(AuthError) as caught:
        await plugin.resolve(API_KEY="s3cr3t-api-key")
    message = str(caught.value)
    assert "exit code 3" in message
    assert "login failed for key" in message
    assert "Install it with: pip install our-plugin" in message
    for secret in ("s3cr3t-api-key", "stdout-secret-token", "abcdefghijklmnop1234", "eyJhbGciOi"):
        assert secret not in message


async def test_a_missing_plugin_is_an_auth_error_with_the_install_hint(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path)
    path = plugin.kubeconfig()
    plugin.command.unlink()
    with pytest.raises(AuthError, match=r"was not found(.|\n)*pip install our-plugin"):
        await resolve_credentials(kubeconfig=str(path), env=_base_env(tmp_path))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PLUGIN_ANSWER_API": V1BETA1, "PLUGIN_TOKEN": "sekrit-canary"},
            "plugin returned version",
        ),
        ({}, "didn't return a token or cert/key pair"),
    ],
)
async def test_a_plugin_answer_that_breaks_the_protocol_is_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(AuthError, match=message) as caught:
        await Plugin(tmp_path).resolve(**env)
    assert "sekrit-canary" not in str(caught.value)  # no token value leaks


async def test_output_that_is_not_json_is_refused_without_echoing_it(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path, body="print('token: hunter2-secret')\n")
    with pytest.raises(AuthError, match="no valid ExecCredential") as caught:
        await plugin.resolve()
    assert "hunter2" not in str(caught.value)


async def test_an_interactive_only_plugin_is_refused_before_it_runs(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path)
    path = plugin.kubeconfig({"PLUGIN_TOKEN": "t"})
    path.write_text(path.read_text().replace("interactiveMode: Never", "interactiveMode: Always"))
    with pytest.raises(AuthError, match="interactive"):
        await resolve_credentials(kubeconfig=str(path), env=_base_env(tmp_path))
    assert plugin.runs == 0


async def test_a_plugin_that_hangs_is_killed_at_the_time_limit(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    plugin = Plugin(tmp_path, body="import time\ntime.sleep(600)\n")
    with pytest.raises(AuthError, match=f"did not finish within {auth_exec.EXEC_TIMEOUT:g} s"):
        await plugin.resolve()


async def test_client_certificate_data_from_the_plugin_is_in_the_credentials(
    tmp_path: Path,
) -> None:
    material = pki()
    pairs = [[material.client_cert_pem.decode(), material.client_key_pem.decode()]]
    credentials = await Plugin(tmp_path).resolve(PLUGIN_CERTS=json.dumps(pairs))
    assert credentials.client_cert_pem == material.client_cert_pem
    assert credentials.client_key_pem == material.client_key_pem
    assert await _authorization(credentials) is None
    credentials.ssl_context()  # loads the pair
    assert isinstance(credentials.token_source, ExecCredentialSource)


async def test_the_plugin_token_matches_the_official_clients(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path)
    path = plugin.kubeconfig({"PLUGIN_TOKEN": "tok"})
    configuration = Configuration()
    load_kube_config(config_file=str(path), client_configuration=configuration)  # type: ignore[no-untyped-call]
    ours = await resolve_credentials(kubeconfig=str(path), env=_base_env(tmp_path))
    assert configuration.api_key["BearerToken"] == "Bearer tok-1"
    assert await _authorization(ours) == "Bearer tok-2"  # one run each, same answer shape


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2030-01-02T03:04:05Z", "2030-01-02T03:04:05+00:00"),
        ("2030-01-02T03:04:05.123456789Z", "2030-01-02T03:04:05.123456+00:00"),
        ("2030-01-02T05:04:05+02:00", "2030-01-02T03:04:05+00:00"),
    ],
)
def test_expiration_timestamps_are_read_as_go_writes_them(text: str, iso: str) -> None:
    assert parse_rfc3339(text).isoformat() == iso


def test_exec_repr_shows_command_and_env_names_but_no_values() -> None:
    config = ExecConfig(
        command="aws",
        args=("eks", "get-token"),
        env=(("AWS_SECRET", "v3ry-s3cret"),),
        api_version=V1,
        install_hint=None,
        provide_cluster_info=False,
        interactive_mode="Never",
    )
    source = ExecCredentialSource(config, env={}, cluster_info=None)
    assert "AWS_SECRET" in repr(source)
    assert "v3ry-s3cret" not in repr(source)


async def test_a_failed_early_refresh_keeps_the_unexpired_credential_and_retries_soon(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    flaky = PLUGIN.replace(
        "status = {}", "status = {}\nif run == 2:\n    sys.exit('temporary outage')"
    )
    plugin = Plugin(tmp_path, body=flaky)
    credentials = await plugin.resolve(PLUGIN_TOKEN="tok", PLUGIN_TTL="300")
    mock_clock.jump(290)  # inside the refresh margin: the plugin runs and fails
    assert await _authorization(credentials) == "Bearer tok-1"
    assert plugin.runs == 2
    assert await _authorization(credentials) == "Bearer tok-1"  # no retry storm
    assert plugin.runs == 2
    mock_clock.jump(EXEC_RETRY_DELAY)
    assert await _authorization(credentials) == "Bearer tok-3"


async def test_a_failed_refresh_after_invalidate_is_an_auth_error(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    flaky = PLUGIN.replace("status = {}", "status = {}\nif run == 2:\n    sys.exit(1)")
    credentials = await Plugin(tmp_path, body=flaky).resolve(PLUGIN_TOKEN="tok", PLUGIN_TTL="300")
    assert credentials.token_source is not None
    credentials.token_source.invalidate()  # the server said 401: the old token is no good
    with pytest.raises(AuthError, match="exit code 1"):
        await _authorization(credentials)
