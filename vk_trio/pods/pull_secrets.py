"""Registry credentials for a pod's image, from its imagePullSecrets.

The kubelet hands imagePullSecrets to the container runtime; for us the "runtime" is a cloud
that pulls the image itself, so we find the credential for the image's registry and pass it to
the provider (RunPod registry auths, Vast.ai image_login). Parsing is pure; fetching the
Secrets is the caller's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from vk_trio.kube.models import Secret
from vk_trio.providers.base import RegistryAuth

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def image_registry(image: str) -> str:
    """The registry host of an image reference (docker.io when none is named)."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def _normalise(server: str) -> str:
    host = server.lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def _decode(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def auths_of(secret: Secret) -> dict[str, RegistryAuth]:
    """registry host → credential, from a dockerconfigjson or dockercfg Secret."""
    raw = secret.data.get(".dockerconfigjson") or secret.data.get(".dockercfg")
    if not raw:
        return {}
    try:
        document = json.loads(_decode(raw) or "{}")
    except json.JSONDecodeError:
        return {}
    entries = document.get("auths", document) if isinstance(document, dict) else {}
    found: dict[str, RegistryAuth] = {}
    for server, entry in entries.items() if isinstance(entries, dict) else ():
        if not isinstance(entry, dict):
            continue
        username, password = entry.get("username", ""), entry.get("password", "")
        if (not username or not password) and entry.get("auth"):
            username, _, password = _decode(str(entry["auth"])).partition(":")
        if username and password:
            host = _normalise(server)
            found.setdefault(host, RegistryAuth(server=host, username=username, password=password))
    return found


def credential_for(image: str, secrets: Iterable[Secret]) -> RegistryAuth | None:
    """The first credential (in imagePullSecrets order) that matches the image's registry."""
    registry = image_registry(image)
    for secret in secrets:
        auth = auths_of(secret).get(registry)
        if auth is not None:
            return auth
    return None
