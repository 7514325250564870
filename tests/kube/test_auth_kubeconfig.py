"""kubeconfig files resolve to one context's settings by kubectl's rules (the pure part)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.kube.test_auth_support import single_context_config, write_kubeconfig
from vk_trio.errors import AuthError, ConfigError
from vk_trio.kube.auth import load_kubeconfig, resolve_kubeconfig
from vk_trio.kube.kubeconfig import ResolvedKubeconfig

B64 = base64.b64encode


def resolve(tmp_path: Path, document: dict[str, Any], **kw: Any) -> ResolvedKubeconfig:
    path = write_kubeconfig(tmp_path / "config", document)
    return resolve_kubeconfig(load_kubeconfig(path), **kw)


def config(
    *,
    clusters: dict[str, Any] | None = None,
    users: dict[str, Any] | None = None,
    contexts: dict[str, Any] | None = None,
    current: str | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for section, kind, entries in (
        ("clusters", "cluster", clusters),
        ("users", "user", users),
        ("contexts", "context", contexts),
    ):
        if entries is not None:
            document[section] = [{"name": n, kind: body} for n, body in entries.items()]
    if current is not None:
        document["current-context"] = current
    return document


def test_first_file_to_define_a_name_wins_and_current_context_comes_from_the_first_setter(
    tmp_path: Path,
) -> None:
    first = config(
        clusters={"a": {"server": "https://first"}},
        contexts={"x": {"cluster": "a", "user": "u"}},
    )
    second = config(
        clusters={"a": {"server": "https://second"}, "b": {"server": "https://b"}},
        users={"u": {"token": "second-token"}},
        contexts={"x": {"cluster": "b"}, "y": {"cluster": "b"}},
        current="x",
    )
    third = config(current="y")
    paths = [
        write_kubeconfig(tmp_path / name, doc)
        for name, doc in (("1", first), ("2", second), ("3", third))
    ]
    merged = load_kubeconfig(paths)
    assert merged.current_context == "x"
    resolved = resolve_kubeconfig(merged)
    assert resolved.server == "https://first"
    assert resolved.token == "second-token"
    assert merged.contexts["x"].file == paths[0]


def test_relative_paths_are_relative_to_the_file_that_defines_them(tmp_path: Path) -> None:
    (tmp_path / "one" / "pki").mkdir(parents=True)
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "pki" / "ca.crt").write_bytes(b"CA")
    (tmp_path / "two" / "token").write_text("tok\n")
    clusters = {"c": {"server": "https://s", "certificate-authority": "pki/ca.crt"}}
    one = write_kubeconfig(tmp_path / "one" / "config", config(clusters=clusters))
    two = write_kubeconfig(
        tmp_path / "two" / "config",
        config(
            users={"u": {"tokenFile": "token"}},
            contexts={"x": {"cluster": "c", "user": "u"}},
            current="x",
        ),
    )
    resolved = resolve_kubeconfig(load_kubeconfig([one, two]))
    assert resolved.ca_pem == b"CA"
    assert resolved.token_file == tmp_path / "two" / "token"


def test_an_explicit_context_overrides_current_context_and_brings_its_namespace(
    tmp_path: Path,
) -> None:
    document = config(
        clusters={"c": {"server": "https://c/"}},
        contexts={"x": {"cluster": "c"}, "y": {"cluster": "c", "namespace": "team"}},
        current="x",
    )
    assert resolve(tmp_path, document).namespace == "default"
    chosen = resolve(tmp_path, document, context="y")
    assert (chosen.context, chosen.namespace, chosen.server) == ("y", "team", "https://c")


@pytest.mark.parametrize(
    ("document", "context", "message"),
    [
        (config(clusters={"c": {"server": "https://c"}}), None, "sets no current-context"),
        (config(contexts={"x": {"cluster": "c"}}, current="x"), None, 'cluster "c"'),
        (config(contexts={"x": {"cluster": "c"}}), "nope", 'context "nope" does not exist'),
        (
            config(
                clusters={"c": {"server": "https://c"}},
                contexts={"x": {"cluster": "c", "user": "ghost"}},
            ),
            "x",
            'user "ghost" was not found',
        ),
        (config(clusters={"c": {}}, contexts={"x": {"cluster": "c"}}), "x", "no server found"),
    ],
)
def test_a_context_that_does_not_resolve_is_a_config_error_that_says_why(
    tmp_path: Path, document: dict[str, Any], context: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(tmp_path, document, context=context)


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        (
            {"certificate-authority-data": "Q0E=", "certificate-authority": "/ca"},
            None,
            "both specified",
        ),
        (
            {"certificate-authority-data": "Q0E=", "insecure-skip-tls-verify": True},
            None,
            "insecure",
        ),
        ({}, {"token": "t", "username": "u", "password": "p"}, "more than one authentication"),
        ({}, {"client-certificate-data": "Q0E="}, "client-key-data or client-key must be"),
        ({}, {"client-key-data": "@@not-base64@@"}, "client-key-data is not valid base64"),
        ({}, {"as": "admin", "token": "t"}, "impersonation"),
        ({"insecure-skip-tls-verify": "yes please"}, None, "must be true or false"),
        (
            {},
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "x"}},
            "interactiveMode",
        ),
        (
            {},
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            "not supported",
        ),
        ({}, {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1"}}, "command must be"),
    ],
)
def test_kubeconfigs_kubectl_rejects_are_rejected(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any] | None, message: str
) -> None:
    document = single_context_config(cluster={"server": "https://c", **cluster}, user=user)
    with pytest.raises(ConfigError, match=message) as caught:
        resolve(tmp_path, document)
    assert "@@not-base64@@" not in str(caught.value)


@pytest.mark.parametrize(
    ("provider", "alternative"),
    [("gcp", "gke-gcloud-auth-plugin"), ("azure", "kubelogin"), ("oidc", "kubelogin")],
)
def test_auth_providers_are_refused_naming_the_exec_plugin_that_replaces_them(
    tmp_path: Path, provider: str, alternative: str
) -> None:
    user = {"auth-provider": {"name": provider, "config": {"access-token": "secret-at"}}}
    document = single_context_config(cluster={"server": "https://c"}, user=user)
    with pytest.raises(AuthError, match=alternative) as caught:
        resolve(tmp_path, document)
    assert "exec" in str(caught.value)
    assert "secret-at" not in str(caught.value)


def test_a_static_credential_takes_precedence_over_an_exec_plugin(tmp_path: Path) -> None:
    plugin = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "never-run"}
    document = single_context_config(
        cluster={"server": "https://c"}, user={"token": "tok", "exec": plugin}
    )
    resolved = resolve(tmp_path, document)
    assert (resolved.token, resolved.exec) == ("tok", None)


def test_an_exec_command_with_a_path_is_relative_to_the_kubeconfig_and_a_bare_one_is_not(
    tmp_path: Path,
) -> None:
    def command(name: str) -> str:
        plugin = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": name}
        document = single_context_config(cluster={"server": "https://c"}, user={"exec": plugin})
        resolved = resolve(tmp_path, document)
        assert resolved.exec is not None
        return resolved.exec.command

    assert command("bin/plugin") == str(tmp_path / "bin" / "plugin")
    assert command("aws") == "aws"
    assert command("/usr/bin/aws") == "/usr/bin/aws"


def test_yaml_numbers_and_booleans_in_string_fields_become_their_text(tmp_path: Path) -> None:
    text = """\
clusters:
- name: 1
  cluster: {server: "https://c", tls-server-name: true}
contexts:
- name: ctx
  context: {cluster: 1, namespace: 0755}
current-context: ctx
"""
    (tmp_path / "config").write_text(text)
    resolved = resolve_kubeconfig(load_kubeconfig(tmp_path / "config"))
    assert (resolved.namespace, resolved.tls_server_name) == ("493", "true")


def test_an_empty_kubeconfig_file_merges_as_an_empty_config(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    full = write_kubeconfig(
        tmp_path / "full", single_context_config(cluster={"server": "https://c"})
    )
    assert resolve_kubeconfig(load_kubeconfig([tmp_path / "empty", full])).server == "https://c"


@pytest.mark.parametrize(
    ("cluster", "server"),
    [
        (
            {"server": "10.0.0.1:6443", "certificate-authority-data": "Q0E="},
            "https://10.0.0.1:6443",
        ),
        ({"server": "10.0.0.1:8080"}, "http://10.0.0.1:8080"),
        ({"server": "https://h:6443/prefix//"}, "https://h:6443/prefix"),
    ],
)
def test_the_server_url_is_normalised_as_client_go_does(
    tmp_path: Path, cluster: dict[str, Any], server: str
) -> None:
    assert resolve(tmp_path, single_context_config(cluster=cluster)).server == server


def test_a_kubeconfig_that_does_not_parse_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("apiVersion: v1\nclusters:\n- name: [oops\n")
    with pytest.raises(ConfigError, match=r"kubeconfig .*config, line 3"):
        load_kubeconfig(tmp_path / "config")


def test_a_kubeconfig_whose_shape_is_wrong_names_the_file_and_section(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("clusters: {a: b}\n")
    with pytest.raises(ConfigError, match=r"config.*clusters must be a list"):
        load_kubeconfig(tmp_path / "config")


def test_resolved_kubeconfig_repr_shows_no_secret(tmp_path: Path) -> None:
    user = {
        "token": "very-secret-token",
        "client-certificate-data": B64(b"CERT").decode(),
        "client-key-data": B64(b"KEY-very-secret").decode(),
    }
    text = repr(
        resolve(tmp_path, single_context_config(cluster={"server": "https://c"}, user=user))
    )
    assert "very-secret" not in text
    assert "<redacted>" in text


def test_a_json_kubeconfig_resolves_like_its_yaml_twin(tmp_path: Path) -> None:
    document = single_context_config(
        cluster={"server": "https://c", "insecure-skip-tls-verify": True},
        user={"token": "t"},
        namespace="ns",
    )
    (tmp_path / "config.json").write_text(json.dumps(document, indent=2))
    from_json = resolve_kubeconfig(load_kubeconfig(tmp_path / "config.json"))
    from_yaml = resolve(tmp_path, document)
    assert (from_json.server, from_json.namespace, from_json.token) == ("https://c", "ns", "t")
    assert from_json.insecure_skip_tls_verify is True
    assert from_json.exec_cluster_info == from_yaml.exec_cluster_info
