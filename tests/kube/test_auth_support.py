"""Shared pieces for the auth tests: a throwaway PKI, kubeconfig writing, exec plugin scripts.

(Named test_* so it can live beside the tests it serves; it holds no tests itself.)
"""

from __future__ import annotations

import functools
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.certs import issue

SERVER_NAME = "kubernetes.internal"


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    other_client_cert_pem: bytes
    other_client_key_pem: bytes


@functools.cache
def pki() -> Pki:
    """A CA, a server certificate for SERVER_NAME only, and two client certificates."""
    ca = issue("test-ca", ca=True)
    server = issue(
        "apiserver", issuer=ca, dns=(SERVER_NAME,), usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    client = issue("vk-trio", issuer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    other = issue("vk-trio-rotated", issuer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(
        ca.cert_pem,
        server.cert_pem,
        server.key_pem,
        client.cert_pem,
        client.key_pem,
        other.cert_pem,
        other.key_pem,
    )


def write_kubeconfig(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def single_context_config(
    *, cluster: dict[str, Any], user: dict[str, Any] | None = None, namespace: str | None = None
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": "c"}
    if user is not None:
        context["user"] = "u"
    if namespace is not None:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}] if user is not None else [],
        "contexts": [{"name": "ctx", "context": context}],
        "current-context": "ctx",
    }


def write_plugin(directory: Path, body: str, *, name: str = "plugin.py") -> Path:
    """A Python script usable as an exec plugin command (absolute path, executable)."""
    script = directory / name
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def exec_credential(api_version: str, **status: Any) -> str:
    return json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "status": status})
