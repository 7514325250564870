"""An image registry stand-in, shared by the simulated clouds: the OCI distribution calls that
read an image's default command.

A Job that sets no ``command`` runs its image's ENTRYPOINT/CMD, and vk-trio must know those
words to wrap them for the exit code (providers/images.py reads them from the image's registry,
as a container runtime does). There is no internet here, so each simulated cloud answers for the
images it has scripts for, at ``{sim.url}/registry``, acting as a pull-through mirror of every
registry: ``?ns=docker.io`` names the upstream, as containerd's mirrors do. The clouds script
images differently (their ``Workload`` types differ), so the registry only asks for an
``ImageScript``: the ``entrypoint``, ``cmd`` and ``registry_username`` every script has.

Only what a runtime reads to learn the command is served: a tag resolves to a multi-platform
index (as Docker Hub serves), a digest to that index's image manifest or config blob; the
config's ``Entrypoint``/``Cmd`` are the script's ``entrypoint``/``cmd``. An unscripted image
answers 404 ``MANIFEST_UNKNOWN``; a private one (``registry_username`` set) wants Basic
credentials with that user name, and answers 401 with a Basic challenge without them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from vk_trio.httpserver import Request, Response

PREFIX = "/registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
_PATH = re.compile(r"^/registry/v2/(?P<repo>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")
S = TypeVar("S")


class ImageScript(Protocol):
    """What the registry needs of a simulated cloud's script of an image."""

    @property
    def entrypoint(self) -> tuple[str, ...]: ...

    @property
    def cmd(self) -> tuple[str, ...]: ...

    @property
    def registry_username(self) -> str | None: ...


def find_script(scripts: Mapping[str, S], image: str) -> S | None:
    """The script of ``image``: exact, or any tag of its repository; None: unscripted."""
    if image in scripts:
        return scripts[image]
    repo = image.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return scripts.get(repo)


def image_name(namespace: str | None, repository: str) -> str:
    """The image name a user writes for ``repository`` on registry ``namespace``."""
    host = namespace or "docker.io"
    if host in DOCKER_HUB:
        return repository.removeprefix("library/")
    return f"{host}/{repository}"


def _digest(document: bytes) -> str:
    return "sha256:" + hashlib.sha256(document).hexdigest()


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"code": code, "message": message}]}
    return Response.json(body, status=status, headers=headers or {})


class ImageRegistry:
    """Serves ``/registry/v2/...`` for the images ``scripted`` knows."""

    def __init__(self, scripted: Callable[[str], ImageScript | None]) -> None:
        self.scripted = scripted
        self.blobs: dict[str, tuple[str, bytes]] = {}  # digest → (media type, document)
        self.requests: list[str] = []  # paths asked for, for tests

    async def __call__(self, request: Request) -> Response:
        self.requests.append(request.path)
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", "the registry stand-in is read-only")
        if request.path.rstrip("/") == f"{PREFIX}/v2":
            return Response.json({})
        match = _PATH.match(request.path)
        if match is None:
            return _error(404, "NAME_UNKNOWN", "no such path")
        repo, kind, ref = match["repo"], match["kind"], match["ref"]
        name = image_name(request.arg("ns"), repo)
        if not ref.startswith("sha256:"):
            script = self.scripted(f"{name}:{ref}")
            if script is None:
                return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {name}:{ref}")
            denied = _check_auth(request, script)
            if denied is not None:
                return denied
            ref = self._publish(script)
        elif ref in self.blobs:
            denied = _check_auth(request, self.scripted(name))
            if denied is not None:
                return denied
        media_type, document = self.blobs.get(ref, ("", b""))
        if not document or (kind == "blobs") != (media_type == OCI_CONFIG):
            code = "BLOB_UNKNOWN" if kind == "blobs" else "MANIFEST_UNKNOWN"
            return _error(404, code, f"unknown: {name}@{ref}")
        return Response(
            status=200,
            headers={"content-type": media_type, "docker-content-digest": ref},
            body=b"" if request.method == "HEAD" else document,
        )

    def _publish(self, script: ImageScript) -> str:
        """Store the config, manifest and index of ``script``; return the index digest."""
        config = _encode(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Entrypoint": list(script.entrypoint) or None,
                    "Cmd": list(script.cmd) or None,
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                },
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        )
        manifest = _encode(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [],
            }
        )
        index = _encode(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": _digest(manifest),
                        "size": len(manifest),
                        "platform": {"architecture": arch, "os": "linux"},
                    }
                    for arch in ("arm64", "amd64")  # not first: readers must pick theirs
                ],
            }
        )
        for media_type, document in ((OCI_CONFIG, config), (OCI_MANIFEST, manifest)):
            self.blobs[_digest(document)] = (media_type, document)
        self.blobs[_digest(index)] = (OCI_INDEX, index)
        return _digest(index)


def _check_auth(request: Request, script: ImageScript | None) -> Response | None:
    user = script.registry_username if script is not None else None
    if user is None:
        return None
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        try:
            given = base64.b64decode(header[6:]).decode().partition(":")[0]
        except ValueError:
            given = ""
        if given == user:
            return None
    return _error(
        401,
        "UNAUTHORIZED",
        "authentication required",
        headers={"www-authenticate": 'Basic realm="vk-trio simulated registry"'},
    )
