"""Image references (``nvidia/cuda:12.4``), parsed once, the way Docker and containerd parse them.

Why one parser: the registry an image is pulled from decides which imagePullSecret credential
is sent there, and the same registry is where vk-trio reads the image's default command. Two
parsers that disagree (``user@evil.com/x`` was ``docker.io/library/user`` to one and
``user@evil.com`` to the other) send a tenant's credential to a host of someone else's choosing.
So the pull-secret lookup (pods/pull_secrets.py) and the registry reader (providers/images.py)
both use ``parse`` here, and a reference it refuses is refused everywhere.

The grammar is distribution's reference grammar (github.com/distribution/reference, regexp.go)::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [ domain "/" ] path-component { "/" path-component }
    domain      := host [ ":" port ]      host: DNS labels, or an IPv6 address in [ ]
    path-component := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
    tag         := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest      := algorithm ":" hex{32,}

with Docker's normalisation: a first component is the registry only when it has a ``.`` or a
``:``, is ``localhost``, or has upper-case letters; otherwise the image is on Docker Hub
(``docker.io``, where one-word names live under ``library/``). A name is at most 255 characters.

PURE: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vk_trio.decoding import excerpt
from vk_trio.errors import InvalidInput

DOCKER_HUB = "docker.io"
LEGACY_DOCKER_HUB = "index.docker.io"
MAX_NAME = 255
MAX_REFERENCE = 4096  # name, tag and a digest of any algorithm

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
_PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class InvalidImageName(InvalidInput):
    """Not an image reference: the kubelet's InvalidImageName (the pod waits for a fix)."""


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """``nvidia/cuda:12.4`` as registry ``docker.io``, repository ``nvidia/cuda``, tag ``12.4``."""

    registry: str  # lower-cased host[:port]
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        """What the registry's manifest endpoint is asked for: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"


def parse(image: str) -> ImageRef:
    """The normalised reference, or ``InvalidImageName`` naming what is wrong with it."""
    if not isinstance(image, str) or not image:
        raise InvalidImageName("image reference: empty")
    if len(image) > MAX_REFERENCE:
        raise InvalidImageName(f"image reference: longer than {MAX_REFERENCE} characters")
    if not image.isascii():
        raise InvalidImageName(f"image {excerpt(image)}: not an ASCII image reference")
    name, at, digest = image.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise InvalidImageName(f"image {excerpt(image)}: invalid digest after '@'")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise InvalidImageName(f"image {excerpt(image)}: invalid tag {excerpt(tag)}")
    registry, path = _split_domain(name)
    if not _DOMAIN.fullmatch(registry):
        raise InvalidImageName(f"image {excerpt(image)}: invalid registry host {excerpt(registry)}")
    if path != path.lower():
        raise InvalidImageName(f"image {excerpt(image)}: repository name must be lowercase")
    if not _PATH.fullmatch(path):
        raise InvalidImageName(f"image {excerpt(image)}: invalid repository name {excerpt(path)}")
    if registry == DOCKER_HUB and _HEX64.fullmatch(path.removeprefix("library/")):
        raise InvalidImageName(f"image {excerpt(image)}: a 64-character hex name is an image id")
    if len(registry) + 1 + len(path) > MAX_NAME:
        raise InvalidImageName(f"image {excerpt(image)}: name longer than {MAX_NAME} characters")
    return ImageRef(registry=registry.lower(), repository=path, tag=tag, digest=digest)


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: (registry, repository path)."""
    first, slash, rest = name.partition("/")
    is_domain = slash and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    registry, path = (first, rest) if is_domain else (DOCKER_HUB, name)
    if registry.lower() == LEGACY_DOCKER_HUB:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return registry, path


def registry_of(image: str) -> str:
    """The registry host of ``image`` (``InvalidInput`` for an invalid reference)."""
    return parse(image).registry
