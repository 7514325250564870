"""Our resolver and the official kubernetes client agree on generated kubeconfigs.

The official package is the oracle here (a dev dependency, never imported by vk_trio): for
several files merged through KUBECONFIG, with clusters, users and contexts that overlap across
files, data and file forms, tokens, token files, basic auth, client certificates, the insecure
flag and tls-server-name, both must produce the same server, CA bytes, client certificate and
key bytes, Authorization header, verification flag and server name.

Known differences the generator steers around (ours follows kubectl in each case):
``current-context`` is set by one file only (the official client takes the *last* file's),
token files hold no surrounding whitespace (it does not strip them), and user names and
passwords are ASCII (it encodes basic auth as latin-1).
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client import Configuration
from kubernetes.config import load_kube_config

from vk_trio.kube.auth import Credentials, resolve_credentials

NAMES = st.sampled_from(["alpha", "beta", "gamma", "prod-eu", "kind-kind"])
TOKENS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=20)
BYTES = st.binary(min_size=1, max_size=64)
SERVERS = st.sampled_from(
    ["https://127.0.0.1:6443", "https://[::1]:443", "https://api.example.com/", "https://h/p"]
)


@dataclass
class Scenario:
    """Kubeconfig documents to write, side files they reference, and the context to use."""

    documents: list[dict[str, Any]]
    side_files: dict[str, bytes] = field(default_factory=dict)
    context: str | None = None


class _Files:
    """Draws file-or-data fields, recording the files to write (relative or absolute)."""

    def __init__(self, draw: st.DrawFn, scenario: Scenario) -> None:
        self.draw, self.scenario = draw, scenario

    def field(self, body: dict[str, Any], key: str, content: bytes) -> None:
        if self.draw(st.booleans()):
            body[f"{key}-data"] = base64.b64encode(content).decode()
            return
        name = f"files/{key}-{len(self.scenario.side_files)}"
        self.scenario.side_files[name] = content
        body[key] = name if self.draw(st.booleans()) else "@ABS@/" + name


def _cluster(draw: st.DrawFn, files: _Files) -> dict[str, Any]:
    body: dict[str, Any] = {"server": draw(SERVERS)}
    if draw(st.booleans()):
        files.field(body, "certificate-authority", draw(BYTES))
    elif draw(st.booleans()):
        body["insecure-skip-tls-verify"] = draw(st.booleans())
    if draw(st.booleans()):
        body["tls-server-name"] = draw(NAMES)
    return body


def _user(draw: st.DrawFn, files: _Files) -> dict[str, Any]:
    body: dict[str, Any] = {}
    method = draw(st.sampled_from(["none", "token", "tokenFile", "basic"]))
    if method == "token":
        body["token"] = draw(TOKENS)
    elif method == "tokenFile":
        name = f"files/token-{len(files.scenario.side_files)}"
        files.scenario.side_files[name] = draw(TOKENS).encode()
        body["tokenFile"] = name
    elif method == "basic":
        body["username"], body["password"] = draw(ASCII), draw(ASCII)
    if draw(st.booleans()):
        files.field(body, "client-certificate", draw(BYTES))
        files.field(body, "client-key", draw(BYTES))
    return body


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(min_value=1, max_value=3))
    scenario = Scenario(documents=[{"apiVersion": "v1", "kind": "Config"} for _ in range(count)])
    files = _Files(draw, scenario)
    clusters = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    users = draw(st.lists(NAMES, max_size=3, unique=True))
    contexts = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    for section, kind, names in (
        ("clusters", "cluster", clusters),
        ("users", "user", users),
        ("contexts", "context", contexts),
    ):
        for name in names:
            # Each name is defined in one or more files; the first definition must win.
            homes = draw(
                st.lists(st.integers(0, count - 1), min_size=1, max_size=count, unique=True)
            )
            for index in homes:
                body = _body(draw, files, kind, clusters=clusters, users=users)
                entries = scenario.documents[index].setdefault(section, [])
                entries.append({"name": name, kind: body})
    chosen = draw(st.sampled_from(contexts))
    if draw(st.booleans()):
        scenario.context = chosen
    else:
        setter = draw(st.integers(0, count - 1))
        scenario.documents[setter]["current-context"] = chosen
    return scenario


def _body(
    draw: st.DrawFn, files: _Files, kind: str, *, clusters: list[str], users: list[str]
) -> dict[str, Any]:
    if kind == "cluster":
        return _cluster(draw, files)
    if kind == "user":
        return _user(draw, files)
    body: dict[str, Any] = {"cluster": draw(st.sampled_from(clusters))}
    if draw(st.booleans()) and users:
        body["user"] = draw(st.sampled_from(users))
    if draw(st.booleans()):
        body["namespace"] = draw(NAMES)
    return body


def _write(scenario: Scenario, root: Path) -> list[Path]:
    for name, content in scenario.side_files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    paths = []
    for index, document in enumerate(scenario.documents):
        path = root / f"config-{index}"
        text = yaml.safe_dump(document).replace("@ABS@", str(root))
        path.write_text(text)
        paths.append(path)
    return paths


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


async def _our_view(credentials: Credentials) -> dict[str, Any]:
    source = credentials.token_source
    return {
        "server": credentials.server,
        "ca": credentials.ca_pem,
        "cert": credentials.client_cert_pem,
        "key": credentials.client_key_pem,
        "authorization": await source.authorization() if source else None,
        "verify": not credentials.insecure_skip_tls_verify,
        "tls_server_name": credentials.tls_server_name,
    }


def _oracle_view(paths: list[Path], context: str | None) -> dict[str, Any]:
    configuration = Configuration()
    load_kube_config(  # type: ignore[no-untyped-call]
        config_file=os.pathsep.join(str(p) for p in paths),
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )
    return {
        "server": configuration.host,
        "ca": _read(configuration.ssl_ca_cert),
        "cert": _read(configuration.cert_file),
        "key": _read(configuration.key_file),
        "authorization": configuration.api_key.get("BearerToken"),
        "verify": configuration.verify_ssl,
        "tls_server_name": configuration.tls_server_name,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
async def test_generated_kubeconfigs_resolve_as_the_official_client_resolves_them(
    scenario: Scenario,
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        paths = _write(scenario, root)
        env = {"KUBECONFIG": os.pathsep.join(str(p) for p in paths), "HOME": str(root)}
        ours = await resolve_credentials(env=env, context=scenario.context, in_cluster_root=root)
        assert await _our_view(ours) == _oracle_view(paths, scenario.context)
