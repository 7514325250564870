"""An image's default command (ENTRYPOINT and CMD), read from its registry as a runtime does.

Why this exists: neither RunPod nor Vast.ai reports a container's exit code, so vk-trio runs a
Job's program under a small shell wrapper that prints it (providers/runpod/mapping.py,
providers/vastai/translate.py). To wrap the program it must know it: the pod's
``command``/``args``, or, when the pod sets no command (seed 000's Job), the image's own default
command, which only the image's config knows. A kubelet's container runtime reads the same
config from the registry before it starts a container; we do that too, over the OCI
distribution API: the manifest by tag (an index: the linux/amd64 entry), then the config blob.
The bearer-token challenge of Docker Hub, GHCR, ECR and most registries is answered anonymously
or with the pod's imagePullSecret; a Basic challenge with the secret. It is provider-neutral:
each provider that wraps Jobs owns one reader.

``mirror`` sends every request to one pull-through mirror (``{mirror}/v2/...?ns=<registry>``, as
containerd's mirrors do): air-gapped sites use that, and so do the simulated clouds, which serve
the scripted images' configs. A config is cached per image reference for an hour.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import httpx2
import trio

from vk_trio import __version__
from vk_trio.providers.base import InvalidSpec, ProviderUnavailable, RegistryAuth

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
PLATFORM = ("linux", "amd64")  # what the GPU clouds' hosts run
CACHE_SECONDS = 3600.0
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """``nvidia/cuda:12.4`` as registry ``docker.io``, repository ``nvidia/cuda``, ref ``12.4``."""

    registry: str
    repository: str
    reference: str


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


def parse_reference(image: str) -> ImageRef:
    """Docker's normalisation: a first component with ``.``/``:`` (or ``localhost``) is the
    registry, else Docker Hub, where one-word names live under ``library/``."""
    name, _, digest = image.partition("@")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first.lower(), rest
    else:
        registry, path = DOCKER_HUB, name
    tag = ""
    if ":" in path.rsplit("/", 1)[-1]:
        path, _, tag = path.rpartition(":")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not path or not re.fullmatch(r"[a-z0-9]+(?:[._/-]+[a-z0-9]+)*", path):
        raise InvalidSpec(f"image {image!r} is not a valid image reference")
    return ImageRef(registry=registry, repository=path, reference=digest or tag or "latest")


class ImageConfigReader:
    """Reads (and caches) image configs; one per provider."""

    def __init__(
        self,
        *,
        mirror: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.mirror = mirror.rstrip("/") if mirror else None
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ImageConfig]] = {}
        self._tokens: dict[tuple[str, str], str] = {}  # (registry, repository) → header
        self._http = httpx2.AsyncClient(
            headers={"user-agent": f"vk-trio/{__version__}"},
            timeout=httpx2.Timeout(30.0, connect=10.0),
            follow_redirects=True,  # blobs redirect to a CDN
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def read(self, image: str, auth: RegistryAuth | None = None) -> ImageConfig:
        """The image's ENTRYPOINT and CMD. Raises InvalidSpec when the registry says the image
        does not exist or may not be read, ProviderUnavailable when it cannot be reached."""
        cached = self._cache.get(image)
        if cached is not None and cached[0] > trio.current_time():
            return cached[1]
        ref = parse_reference(image)
        manifest = await self._json(ref, "manifests", ref.reference, ACCEPT, auth)
        if "manifests" in manifest:
            digest = _platform_entry(manifest, image)
            manifest = await self._json(ref, "manifests", digest, ACCEPT, auth)
        config_digest = (manifest.get("config") or {}).get("digest")
        if not isinstance(config_digest, str):
            raise InvalidSpec(f"image {image}: its manifest names no config (schema 1?)")
        blob = await self._json(ref, "blobs", config_digest, "*/*", auth)
        inner = blob.get("config") or {}
        config = ImageConfig(
            entrypoint=tuple(str(w) for w in inner.get("Entrypoint") or ()),
            cmd=tuple(str(w) for w in inner.get("Cmd") or ()),
        )
        self._cache[image] = (trio.current_time() + self.cache_seconds, config)
        return config

    # --- HTTP --------------------------------------------------------------------------------

    def _url(self, ref: ImageRef, kind: str, name: str) -> tuple[str, dict[str, str]]:
        path = f"/v2/{ref.repository}/{kind}/{name}"
        if self.mirror:
            return self.mirror + path, {"ns": ref.registry}
        host = DOCKER_HUB_ENDPOINT if ref.registry == DOCKER_HUB else f"https://{ref.registry}"
        return host + path, {}

    async def _json(
        self, ref: ImageRef, kind: str, name: str, accept: str, auth: RegistryAuth | None
    ) -> dict[str, Any]:
        url, params = self._url(ref, kind, name)
        key = (ref.registry, ref.repository)
        response = await self._get(url, params, accept, self._tokens.get(key))
        if response.status_code == 401:
            header = await self._authorize(ref, response, auth)
            if header is not None:
                self._tokens[key] = header
                response = await self._get(url, params, accept, header)
        where = f"image {ref.registry}/{ref.repository}:{ref.reference}"
        if response.status_code in (401, 403):
            raise InvalidSpec(
                f"{where}: the registry refused to show it ({response.status_code}); give the "
                "pod an imagePullSecret for it, or set the container's command"
            )
        if response.status_code == 404:
            via = f" (asked through the mirror {self.mirror})" if self.mirror else ""
            raise InvalidSpec(f"{where}: not found in its registry{via}: {kind}/{name}")
        if response.status_code != 200:
            raise ProviderUnavailable(f"{where}: the registry answered {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"{where}: the registry sent no JSON") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{where}: the registry sent no JSON object")
        return document

    async def _get(
        self, url: str, params: dict[str, str], accept: str, authorization: str | None
    ) -> httpx2.Response:
        headers = {"accept": accept}
        if authorization:
            headers["authorization"] = authorization
        try:
            return await self._http.get(url, params=params, headers=headers)
        except httpx2.HTTPError as exc:
            raise ProviderUnavailable(f"image registry {url}: {exc!r}") from exc

    async def _authorize(
        self, ref: ImageRef, response: httpx2.Response, auth: RegistryAuth | None
    ) -> str | None:
        """The Authorization header that answers the registry's challenge (None: none can)."""
        challenge = response.headers.get("www-authenticate", "")
        scheme, _, rest = challenge.partition(" ")
        basic = None
        if auth is not None:
            basic = (
                "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
            )
        if scheme.lower() == "basic":
            return basic
        if scheme.lower() != "bearer":
            return None
        params = dict(_CHALLENGE_PARAM.findall(rest))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return None
        params.setdefault("scope", f"repository:{ref.repository}:pull")
        headers = {"authorization": basic} if basic else {}
        try:
            answer = await self._http.get(realm, params=params, headers=headers)
        except httpx2.HTTPError as exc:
            raise ProviderUnavailable(f"image registry token service {realm}: {exc!r}") from exc
        if answer.status_code != 200:
            return None
        try:
            body = answer.json()
        except ValueError:
            return None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        return f"Bearer {token}" if isinstance(token, str) and token else None


def _platform_entry(index: dict[str, Any], image: str) -> str:
    """The digest of the linux/amd64 manifest of a multi-platform index."""
    for entry in index.get("manifests") or ():
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == PLATFORM:
            digest = entry.get("digest")
            if isinstance(digest, str):
                return digest
    raise InvalidSpec(f"image {image}: no {'/'.join(PLATFORM)} variant (GPU hosts run linux/amd64)")
