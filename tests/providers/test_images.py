"""The image registry lookup treats the registry as untrusted: bounded documents, typed reads,
credentials scoped to the pod that gave them, no downgrade, no link-local or metadata address,
a deadline per lookup and a cap on lookups at once."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import trio
import trio.testing

from vk_trio.providers.base import InvalidSpec, ProviderUnavailable, RegistryAuth
from vk_trio.providers.egress import EgressRefused
from vk_trio.providers.images import ImageConfigReader
from vk_trio.sim.runpod import RunPodSim, Workload

CFG = "sha256:" + "c" * 64
MANIFEST = {"config": {"digest": CFG}}
CONFIG = {"config": {"Entrypoint": ["/init"], "Cmd": ["serve"]}}
ROBOT = RegistryAuth(server="reg.example", username="robot", password="pw")
Handler = Callable[[httpx2.Request], httpx2.Response]


def registry(documents: dict[str, Any], *, user: str | None = None) -> Handler:
    """A registry that serves ``documents`` by path; with ``user``, only with Basic auth."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        if user is not None:
            expected = "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()
            if request.headers.get("authorization") != expected:
                return httpx2.Response(401, headers={"www-authenticate": 'Basic realm="r"'})
        document = documents.get(request.url.path)
        if document is None:
            return httpx2.Response(404)
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        return httpx2.Response(200, content=body)

    return handle


def reader(handler: Handler, **kw: Any) -> ImageConfigReader:
    return ImageConfigReader(transport=httpx2.MockTransport(handler), **kw)


def app(manifest: Any = MANIFEST, config: Any = CONFIG) -> dict[str, Any]:
    return {"/v2/app/manifests/1": manifest, f"/v2/app/blobs/{CFG}": config}


async def read(
    handler: Handler, image: str = "reg.example/app:1", auth: RegistryAuth | None = None
) -> Any:
    images = reader(handler)
    try:
        return await images.read(image, auth)
    finally:
        await images.aclose()


@pytest.mark.parametrize(
    ("documents", "why"),
    [
        (app(manifest={"config": "x"}), "unusable document"),  # was AttributeError
        (app(manifest=b"[" * 5000), "unusable document"),  # was RecursionError
        (app(manifest=b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}"), "nested too deeply"),
        (app(manifest={"config": {"digest": "../../../admin"}}), "invalid digest"),
        (app(manifest={"manifests": [{"digest": 5}]}), "unusable document"),
        (app(manifest={"manifests": "x"}), "unusable document"),
        (app(config={"config": {"Entrypoint": "sh"}}), "unusable document"),
        (app(config={"config": {"Cmd": [1, 2]}}), "unusable document"),
        (app(config={"config": [1]}), "unusable document"),
        (app(config=b"1" * 5000), "unusable document"),
        (app(manifest={"config": {"digest": CFG}, "pad": "x" * 5_000_000}), "more than"),
    ],
)
async def test_a_registry_document_we_cannot_use_fails_the_pod_cleanly(
    documents: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidSpec, match=why):
        await read(registry(documents))


async def test_a_body_that_is_not_json_is_retried() -> None:
    with pytest.raises(ProviderUnavailable, match="no JSON"):
        await read(registry(app(manifest=b"<html>proxy error</html>")))


async def test_a_config_read_with_a_credential_is_never_given_to_a_pod_without_it() -> None:
    images = reader(registry(app(), user="robot"))
    try:
        found = await images.read("reg.example/app:1", ROBOT)
        assert found.cmd == ("serve",)
        with pytest.raises(InvalidSpec, match="refused to show it"):
            await images.read("reg.example/app:1")  # another tenant, no secret: no answer
        other = RegistryAuth(server="reg.example", username="mallory", password="guess")
        with pytest.raises(InvalidSpec, match="refused to show it"):
            await images.read("reg.example/app:1", other)
        assert await images.read("reg.example/app:1", ROBOT) == found  # its own cache entry
    finally:
        await images.aclose()


async def test_a_token_obtained_with_a_credential_is_never_sent_for_a_pod_without_it() -> None:
    sent: list[str | None] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "auth.example":
            basic = request.headers.get("authorization", "")
            return httpx2.Response(200, json={"token": "t-robot" if basic else "t-anon"})
        sent.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer t-robot":
            challenge = 'Bearer realm="https://auth.example/token",service="reg"'
            return httpx2.Response(401, headers={"www-authenticate": challenge})
        return registry(app())(request)

    images = reader(handle)
    try:
        await images.read("reg.example/app:1", ROBOT)
        sent.clear()
        with pytest.raises(InvalidSpec, match="refused"):
            await images.read("reg.example/app:1")
    finally:
        await images.aclose()
    assert "Bearer t-robot" not in sent


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://cdn.example/blob", "plain http"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.0.0/16"),
        ("https://[fd00:ec2::254]/latest/", "fd00:ec2::254"),
        ("https://[::ffff:169.254.169.254]/x", "169.254.0.0/16"),
        ("file:///etc/passwd", "not a registry URL"),
    ],
)
async def test_redirects_may_not_downgrade_or_reach_metadata_addresses(
    location: str, why: str
) -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v2/app/manifests/1":
            return httpx2.Response(302, headers={"location": location})
        return httpx2.Response(500)  # never reached

    with pytest.raises(EgressRefused, match=why):
        await read(handle)


async def test_a_token_realm_on_a_metadata_address_or_over_http_is_refused() -> None:
    for realm, why in [
        ("https://169.254.169.254/token", "169.254.0.0/16"),
        ("http://auth.example/token", "plain http"),
    ]:

        def handle(request: httpx2.Request, realm: str = realm) -> httpx2.Response:
            challenge = f'Bearer realm="{realm}",service="reg"'
            return httpx2.Response(401, headers={"www-authenticate": challenge})

        with pytest.raises(EgressRefused, match=why):
            await read(handle, auth=ROBOT)


async def test_the_registry_token_stays_with_the_registry_across_a_redirect() -> None:
    seen: dict[str, str | None] = {}

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen[request.url.host] = request.headers.get("authorization")
        if request.url.host == "cdn.example":
            return httpx2.Response(200, json=CONFIG)
        if request.url.path.startswith("/v2/app/blobs/"):
            return httpx2.Response(307, headers={"location": "https://cdn.example/signed?x=1"})
        return registry(app(), user="robot")(request)

    found = await read(handle, auth=ROBOT)
    assert found.cmd == ("serve",)
    assert seen["reg.example"] is not None and seen["cdn.example"] is None


async def test_a_lookup_that_takes_too_long_is_given_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hang(request: httpx2.Request) -> httpx2.Response:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    images = ImageConfigReader(transport=httpx2.MockTransport(hang), lookup_seconds=20)
    try:
        with pytest.raises(ProviderUnavailable, match="longer than 20s"):
            await images.read("reg.example/app:1")
    finally:
        await images.aclose()


async def test_slow_registries_hold_at_most_the_lookup_slots_never_every_worker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(request: httpx2.Request) -> httpx2.Response:
        await trio.sleep(1000)
        raise AssertionError  # pragma: no cover

    images = ImageConfigReader(
        transport=httpx2.MockTransport(slow), max_lookups=2, lookup_seconds=60, slot_wait_seconds=5
    )
    outcomes: list[str] = []

    async def one(index: int) -> None:
        try:
            await images.read(f"reg.example/app{index}:1")
        except ProviderUnavailable as exc:
            outcomes.append("busy" if "under way" in str(exc) else "slow")

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for index in range(5):
            nursery.start_soon(one, index)
    await images.aclose()
    assert sorted(outcomes) == ["busy", "busy", "busy", "slow", "slow"]
    assert trio.current_time() - start <= 61  # the busy ones were back after 5 s


async def test_names_that_resolve_to_a_metadata_address_are_refused_at_connect(
    nursery: trio.Nursery,
) -> None:
    sim = RunPodSim(api_key="k")
    sim.script_workload("app:1", Workload(cmd=("serve",)))
    await nursery.start(sim.serve)
    port = sim.url.rsplit(":", 1)[1]
    answers = {"registry.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    async def lookup(host: str, **kw: Any) -> Any:
        images = ImageConfigReader(mirror=f"http://{host}:{port}/registry", resolve=resolve, **kw)
        try:
            return await images.read("app:1")
        finally:
            await images.aclose()

    assert (await lookup("registry.test")).cmd == ("serve",)  # a private address is fine
    with pytest.raises(EgressRefused, match=r"resolves to 169\.254\.169\.254"):
        await lookup("metadata.test")
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.0/8"):  # the operator's own ranges
        await lookup("registry.test", deny=("127.0.0.0/8",))
    with pytest.raises(EgressRefused, match=r"169\.254\.0\.0/16"):  # always, whatever configured
        await lookup("metadata.test", deny=())
