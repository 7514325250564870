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
the scripted images' configs.

The registry is the tenant's choice, so everything it says is untrusted:

* **Scoped credentials.** Configs and tokens are cached per image *and per credential* (a hash
  of it, or its absence): a pod without a secret never gets an answer, a token or a header that
  was obtained with another tenant's secret. A registry token goes only to the host that asked
  for it (a redirect to a CDN drops it).
* **Where it may send us**: egress.py (no link-local or metadata addresses, operator ranges,
  no https → http downgrade, redirects followed by hand, at most ``MAX_REDIRECTS``).
* **Bounded**: documents of at most ``MAX_DOCUMENT`` bytes, read as typed structs (a
  ``{"config": "x"}`` or 5,000 nested ``[`` is a clean error, never a crash); a whole lookup
  within ``LOOKUP_SECONDS``; at most ``MAX_LOOKUPS`` at once, apart from the pod workers (a pod
  that waits ``SLOT_WAIT_SECONDS`` for a turn is retried later, so slow registries cannot hold
  the node's workers). The image reference is parsed by the one parser (vk_trio/imageref.py).

A registry that refuses, does not know the image, or sends something unusable fails the pod
naming the image (``InvalidSpec``); one that cannot be reached, or sends no JSON, is retried
(``ProviderUnavailable``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar

import httpx2
import msgspec
import trio

from vk_trio import __version__
from vk_trio.errors import InvalidInput
from vk_trio.imageref import DIGEST, DOCKER_HUB, ImageRef, parse
from vk_trio.providers.base import InvalidSpec, ProviderUnavailable, RegistryAuth
from vk_trio.providers.egress import DEFAULT_DENY, AddressGuard, Resolver, guarded_transport

T = TypeVar("T")

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
PLATFORM = ("linux", "amd64")  # what the GPU clouds' hosts run
CACHE_SECONDS = 3600.0
MAX_CACHED = 1024  # configs and tokens remembered (the least recently used go first)
MAX_DOCUMENT = 4 * 2**20  # a manifest, an index or a config; real ones are a few KiB
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 5
LOOKUP_SECONDS = 60.0  # one whole lookup: manifests, token, config
MAX_LOOKUPS = 8  # at once, for the whole node
SLOT_WAIT_SECONDS = 5.0
TOKEN_SECONDS = 60  # a token's life when the realm does not say (the distribution spec's)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
Text = Annotated[str, msgspec.Meta(max_length=64 * 1024)]
Digest = Annotated[str, msgspec.Meta(max_length=256)]


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


# --- what the registry sends, as far as we read it ------------------------------------------


class _Platform(msgspec.Struct):
    os: Text = ""
    architecture: Text = ""


class _Descriptor(msgspec.Struct):
    digest: Digest = ""
    platform: _Platform | None = None


class _Manifest(msgspec.Struct):
    config: _Descriptor | None = None
    manifests: list[_Descriptor] | None = None


class _ContainerConfig(msgspec.Struct):
    Entrypoint: list[Text] | None = None
    Cmd: list[Text] | None = None


class _ImageBlob(msgspec.Struct):
    config: _ContainerConfig | None = None


class _TokenAnswer(msgspec.Struct):
    token: Text | None = None
    access_token: Text | None = None
    expires_in: Annotated[int, msgspec.Meta(ge=0, le=2**31)] | None = None


@dataclass(frozen=True)
class _Answer:
    url: httpx2.URL
    status: int
    headers: httpx2.Headers
    body: bytes


def credential_key(auth: RegistryAuth | None) -> str:
    """What caches are keyed by besides the image: a hash of the credential, or ``""``."""
    if auth is None:
        return ""
    secret = f"{auth.server}\0{auth.username}\0{auth.password}".encode()
    return hashlib.sha256(secret).hexdigest()


def reference(image: str) -> ImageRef:
    """``image`` parsed by the one parser; not a reference: ``InvalidSpec`` naming it."""
    try:
        return parse(image)
    except InvalidInput as exc:
        raise InvalidSpec(f"{exc} (not a valid image reference)") from None


class ImageConfigReader:
    """Reads (and caches) image configs; one per provider."""

    def __init__(
        self,
        *,
        mirror: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        cache_seconds: float = CACHE_SECONDS,
        deny: Sequence[str] = DEFAULT_DENY,
        resolve: Resolver | None = None,
        lookup_seconds: float = LOOKUP_SECONDS,
        max_lookups: int = MAX_LOOKUPS,
        slot_wait_seconds: float = SLOT_WAIT_SECONDS,
        max_document: int = MAX_DOCUMENT,
    ) -> None:
        self.mirror = mirror.rstrip("/") if mirror else None
        self.cache_seconds = cache_seconds
        self.lookup_seconds = lookup_seconds
        self.slot_wait_seconds = slot_wait_seconds
        self.max_document = max_document
        self.guard = AddressGuard(deny, resolve=resolve)
        self.lookups = trio.CapacityLimiter(max_lookups)
        self._cache: OrderedDict[tuple[str, str], tuple[float, ImageConfig]] = OrderedDict()
        # (registry, repository, credential key) → (expiry, Authorization header)
        self._tokens: OrderedDict[tuple[str, str, str], tuple[float, str]] = OrderedDict()
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None  # made on first use (TLS setup costs)

    @property
    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                headers={"user-agent": f"vk-trio/{__version__}"},
                timeout=httpx2.Timeout(30.0, connect=10.0),
                follow_redirects=False,  # followed by hand: each hop is checked (egress.py)
                transport=self._transport or guarded_transport(self.guard),
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def read(self, image: str, auth: RegistryAuth | None = None) -> ImageConfig:
        """The image's ENTRYPOINT and CMD. Raises InvalidSpec when the registry says the image
        does not exist, may not be read or is unusable, ProviderUnavailable when it cannot be
        reached (or too many lookups are under way)."""
        ref = reference(image)
        key = (str(ref), credential_key(auth))
        cached = self._cache.get(key)
        if cached is not None and cached[0] > trio.current_time():
            self._cache.move_to_end(key)
            return cached[1]
        with trio.move_on_after(self.slot_wait_seconds) as waiting:
            await self.lookups.acquire()
        if waiting.cancelled_caught:
            raise ProviderUnavailable(
                f"image {ref}: {self.lookups.total_tokens} registry lookups are under way; "
                "trying again later"
            )
        try:
            with trio.move_on_after(self.lookup_seconds) as scope:
                config = await self._lookup(ref, auth, key[1])
            if scope.cancelled_caught:
                raise ProviderUnavailable(
                    f"image {ref}: the registry took longer than {self.lookup_seconds:g}s"
                )
        finally:
            self.lookups.release()
        _remember(self._cache, key, (trio.current_time() + self.cache_seconds, config))
        return config

    async def _lookup(self, ref: ImageRef, auth: RegistryAuth | None, cred: str) -> ImageConfig:
        manifest = await self._document(ref, "manifests", ref.reference, ACCEPT, auth, cred)
        found = _decode(manifest, _Manifest, ref)
        if found.manifests is not None:
            digest = _platform_entry(found.manifests, ref)
            manifest = await self._document(ref, "manifests", digest, ACCEPT, auth, cred)
            found = _decode(manifest, _Manifest, ref)
        if found.config is None or not found.config.digest:
            raise InvalidSpec(f"image {ref}: its manifest names no config (schema 1?)")
        digest = _checked_digest(found.config.digest, ref)
        blob = _decode(
            await self._document(ref, "blobs", digest, "*/*", auth, cred), _ImageBlob, ref
        )
        inner = blob.config or _ContainerConfig()
        return ImageConfig(entrypoint=tuple(inner.Entrypoint or ()), cmd=tuple(inner.Cmd or ()))

    # --- HTTP --------------------------------------------------------------------------------

    def _url(self, ref: ImageRef, kind: str, name: str) -> httpx2.URL:
        path = f"/v2/{ref.repository}/{kind}/{name}"
        if self.mirror:
            return httpx2.URL(self.mirror + path, params={"ns": ref.registry})
        host = DOCKER_HUB_ENDPOINT if ref.registry == DOCKER_HUB else f"https://{ref.registry}"
        return httpx2.URL(host + path)

    async def _document(  # noqa: PLR0917
        self,
        ref: ImageRef,
        kind: str,
        name: str,
        accept: str,
        auth: RegistryAuth | None,
        cred: str,
    ) -> bytes:
        url = self._url(ref, kind, name)
        token_key = (ref.registry, ref.repository, cred)
        token = self._tokens.get(token_key)
        header = token[1] if token is not None and token[0] > trio.current_time() else None
        answer = await self._get(url, accept, header, ref=ref)
        if answer.status == 401:
            fresh = await self._authorize(ref, answer, auth)
            if fresh is not None:
                header, expiry = fresh
                _remember(self._tokens, token_key, (trio.current_time() + expiry, header))
                answer = await self._get(url, accept, header, ref=ref)
        where = f"image {ref}"
        if answer.status in (401, 403):
            raise InvalidSpec(
                f"{where}: the registry refused to show it ({answer.status}); give the "
                "pod an imagePullSecret for it, or set the container's command"
            )
        if answer.status == 404:
            via = f" (asked through the mirror {self.mirror})" if self.mirror else ""
            raise InvalidSpec(f"{where}: not found in its registry{via}: {kind}/{name}")
        if answer.status != 200:
            raise ProviderUnavailable(f"{where}: the registry answered {answer.status}")
        return answer.body

    async def _get(
        self, url: httpx2.URL, accept: str, authorization: str | None, *, ref: ImageRef
    ) -> _Answer:
        """GET with redirects followed by hand (each hop checked, the token kept to its host)
        and the body read up to the size limit."""
        headers = {"accept": accept}
        if authorization:
            headers["authorization"] = authorization
        came_from: httpx2.URL | None = None
        for _ in range(MAX_REDIRECTS + 1):
            self.guard.check_url(url, came_from=came_from)
            try:
                async with self._http.stream("GET", url, headers=headers) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        came_from, url = url, url.join(location)
                        if url.host != came_from.host:
                            headers.pop("authorization", None)
                        continue
                    body = await self._body(response, ref)
                    return _Answer(url, response.status_code, response.headers, body)
            except httpx2.HTTPError as exc:
                raise ProviderUnavailable(f"image registry {url.host}: {exc!r}") from exc
            except httpx2.InvalidURL as exc:
                raise InvalidSpec(f"image {ref}: the registry sent a bad URL: {exc}") from None
        raise InvalidSpec(f"image {ref}: more than {MAX_REDIRECTS} redirects")

    async def _body(self, response: httpx2.Response, ref: ImageRef) -> bytes:
        limit = self.max_document if response.status_code == 200 else MAX_ERROR_BODY
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                if response.status_code == 200:
                    raise InvalidSpec(f"image {ref}: the registry sent more than {limit} bytes")
                break
            chunks.append(chunk)
        return b"".join(chunks)

    async def _authorize(
        self, ref: ImageRef, response: _Answer, auth: RegistryAuth | None
    ) -> tuple[str, float] | None:
        """The Authorization header answering the registry's challenge, and how long it may be
        used (None: nothing can answer it). The pod's credential goes only to the registry it is
        for and to the token realm that registry names, over https when the registry is."""
        challenge = response.headers.get("www-authenticate", "")[:8192]
        scheme, _, rest = challenge.partition(" ")
        basic = None
        if auth is not None:
            pair = f"{auth.username}:{auth.password}".encode()
            basic = "Basic " + base64.b64encode(pair).decode()
        if scheme.lower() == "basic":
            return (basic, self.cache_seconds) if basic else None
        if scheme.lower() != "bearer":
            return None
        params = dict(_CHALLENGE_PARAM.findall(rest))
        try:
            realm = httpx2.URL(params.pop("realm", ""))
        except httpx2.InvalidURL:
            return None
        if realm.scheme not in ("https", "http"):
            return None
        self.guard.check_url(realm, came_from=response.url)
        params.setdefault("scope", f"repository:{ref.repository}:pull")
        answer = await self._get(
            realm.copy_merge_params(params), "application/json", basic, ref=ref
        )
        if answer.status != 200:
            return None
        try:
            body = msgspec.json.decode(answer.body, type=_TokenAnswer)
        except (msgspec.MsgspecError, RecursionError):
            return None
        token = body.token or body.access_token
        if not token:
            return None
        return f"Bearer {token}", float(min(body.expires_in or TOKEN_SECONDS, 3600))


def _decode(document: bytes, kind: type[T], ref: ImageRef) -> T:
    """A registry document as ``kind``: not JSON is retried, JSON of another shape fails."""
    try:
        result: T = msgspec.json.decode(document, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(f"image {ref}: the registry sent an unusable document: {exc}") from None
    except msgspec.DecodeError:
        raise ProviderUnavailable(f"image {ref}: the registry sent no JSON") from None
    except RecursionError:
        raise InvalidSpec(f"image {ref}: the registry sent a document nested too deeply") from None
    return result


def _checked_digest(digest: str, ref: ImageRef) -> str:
    """A digest that goes into a URL path must be one (``sha256:<hex>``), not ``../..``."""
    if not DIGEST.fullmatch(digest):
        raise InvalidSpec(f"image {ref}: the registry named an invalid digest {digest[:80]!r}")
    return digest


def _platform_entry(manifests: list[_Descriptor], ref: ImageRef) -> str:
    """The digest of the linux/amd64 manifest of a multi-platform index."""
    for entry in manifests:
        platform = entry.platform or _Platform()
        if (platform.os, platform.architecture) == PLATFORM:
            return _checked_digest(entry.digest, ref)
    raise InvalidSpec(f"image {ref}: no {'/'.join(PLATFORM)} variant (GPU hosts run linux/amd64)")


K = TypeVar("K")


def _remember(cache: OrderedDict[K, T], key: K, value: T) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > MAX_CACHED:
        cache.popitem(last=False)
