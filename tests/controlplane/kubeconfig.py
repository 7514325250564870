"""Kubeconfig files for the test control plane's users and components.

Everything is embedded (CA, client certificate and key as base64 data), so a kubeconfig keeps
working when copied elsewhere and exercises the `*-data` code paths of kubeconfig loaders.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from tests.controlplane.pki import KeyPair

CLUSTER = "vk-trio-test"


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca: Path,
    user: str,
    client: KeyPair | None = None,
    token: str | None = None,
) -> Path:
    """Write a single-context kubeconfig for `user` (client certificate or bearer token)."""
    credentials: dict[str, str] = {}
    if client is not None:
        credentials["client-certificate-data"] = _b64(client.cert)
        credentials["client-key-data"] = _b64(client.key)
    if token is not None:
        credentials["token"] = token
    if not credentials:
        raise ValueError("a kubeconfig user needs a client certificate and key, or a token")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": CLUSTER, "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
