"""Registry credentials for a pod's image, from its imagePullSecrets.

The kubelet hands imagePullSecrets to the container runtime; for us the "runtime" is a cloud
that pulls the image itself, so we find the credential for the image's registry and pass it to
the provider (RunPod registry auths, Vast.ai image_login). Parsing is pure; fetching the
Secrets is the caller's.

A Secret is tenant input: ``.dockerconfigjson`` may be a 5,000-digit number, 5,000 nested ``[``
or an ``auth`` that is not base64 of ASCII. Each is decoded within bounds (vk_trio/decoding.py);
a Secret that cannot be read is skipped and named in ``Lookup.unreadable`` (the kubelet, too,
pulls without a pull secret it cannot parse, and says so), never an exception. The image's
registry comes from the one reference parser (vk_trio/imageref.py), the same one the registry
reader uses, so a credential is only ever sent to the registry it was written for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vk_trio import decoding
from vk_trio.errors import InvalidInput
from vk_trio.imageref import DOCKER_HUB, registry_of
from vk_trio.kube.models import Secret
from vk_trio.providers.base import RegistryAuth

MAX_CONFIG_BYTES = 256 * 1024  # a docker config with many registries is a few KiB
MAX_ENTRIES = 256  # registries in one Secret
MAX_FIELD = 4096  # a username, password or auth; cloud tokens are long, not this long
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """The credential for an image (if any) and the Secrets that could not be read, and why."""

    auth: RegistryAuth | None = None
    unreadable: tuple[tuple[str, str], ...] = ()  # (secret name, reason)


def image_registry(image: str) -> str:
    """The registry host of an image reference (docker.io when none is named).

    Raises ``InvalidInput`` for a reference that is not one (``user@evil.com/x``).
    """
    return registry_of(image)


def _normalise(server: str) -> str:
    host = server.lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def auths_of(secret: Secret) -> dict[str, RegistryAuth]:
    """registry host → credential, from a dockerconfigjson or dockercfg Secret.

    Raises ``InvalidInput`` when the Secret's config cannot be read at all; entries that are
    not credentials (no username or password) are left out.
    """
    raw = secret.data.get(".dockerconfigjson") or secret.data.get(".dockercfg")
    if not raw:
        return {}
    what = f"imagePullSecret {secret.metadata.name!r}"
    text = decoding.base64_text(raw, what=what, max_bytes=MAX_CONFIG_BYTES)
    document = decoding.json_value(text, what=what, max_bytes=MAX_CONFIG_BYTES)
    entries = document.get("auths", document) if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise InvalidInput(f"{what}: not a docker config (no 'auths' object)")
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(f"{what}: more than {MAX_ENTRIES} registries")
    found: dict[str, RegistryAuth] = {}
    for server, entry in entries.items():
        auth = _credential(server, entry, what=what)
        if auth is not None:
            found.setdefault(auth.server, auth)
    return found


def _credential(server: str, entry: Any, *, what: str) -> RegistryAuth | None:
    if not isinstance(entry, dict):
        return None
    username, password = entry.get("username"), entry.get("password")
    if not (isinstance(username, str) and username and isinstance(password, str) and password):
        encoded = entry.get("auth")
        if not isinstance(encoded, str) or not encoded:
            return None
        pair = decoding.base64_text(encoded, what=f"{what}: 'auth' of {server[:60]!r}")
        username, _, password = pair.partition(":")
    if not username or not password:
        return None
    if max(len(server), len(username), len(password)) > MAX_FIELD:
        raise InvalidInput(f"{what}: a server, username or password is longer than {MAX_FIELD}")
    host = _normalise(server)
    return RegistryAuth(server=host, username=username, password=password)


def pull_credential(image: str, secrets: Iterable[Secret]) -> Lookup:
    """The first credential (in imagePullSecrets order) that matches the image's registry.

    Raises ``InvalidInput`` only for an image reference that is not one.
    """
    registry = image_registry(image)
    unreadable: list[tuple[str, str]] = []
    for secret in secrets:
        try:
            auth = auths_of(secret).get(registry)
        except InvalidInput as exc:
            unreadable.append((secret.metadata.name, str(exc)))
            continue
        if auth is not None:
            return Lookup(auth=auth, unreadable=tuple(unreadable))
    return Lookup(unreadable=tuple(unreadable))


def credential_for(image: str, secrets: Iterable[Secret]) -> RegistryAuth | None:
    """``pull_credential(image, secrets).auth``; unreadable Secrets are skipped."""
    return pull_credential(image, secrets).auth
