"""Fuzz target for image registries' answers: whatever a registry sends (documents of any
shape, bodies that are not JSON, odd statuses, challenges and redirects), reading an image's
command ends in an ImageConfig or in InvalidSpec / ProviderUnavailable, never in another error.
Seven crash sites were found here before (``{"config":"x"}``, deep nesting, ...)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ, JSON, TEXT, nested
from vk_trio.providers.base import CloudError, RegistryAuth
from vk_trio.providers.images import ImageConfigReader

DIGEST = "sha256:" + "d" * 64
DESCRIPTOR = st.fixed_dictionaries(
    {},
    optional={
        "digest": st.just(DIGEST) | TEXT,
        "platform": st.fixed_dictionaries(
            {}, optional={"os": st.just("linux") | TEXT, "architecture": st.just("amd64") | TEXT}
        )
        | JSON,
    },
)
MANIFESTS = st.one_of(
    st.fixed_dictionaries({"config": DESCRIPTOR | JSON}),
    st.fixed_dictionaries({"manifests": st.lists(DESCRIPTOR, max_size=3) | JSON}),
    JSON,
)
CONFIGS = st.one_of(
    st.fixed_dictionaries(
        {
            "config": st.fixed_dictionaries(
                {}, optional={"Entrypoint": st.lists(TEXT, max_size=3) | JSON, "Cmd": JSON}
            )
            | JSON
        }
    ),
    JSON,
)
BODIES = st.one_of(
    MANIFESTS.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=100),
    st.just(nested(5000)),
)
STATUSES = st.sampled_from([200, 200, 200, 301, 302, 307, 401, 403, 404, 429, 500])
CHALLENGES = st.one_of(
    st.just('Bearer realm="https://auth.example/token",service="r"'),
    st.just('Bearer realm="http://169.254.169.254/token"'),
    st.just('Basic realm="r"'),
    TEXT,
)
LOCATIONS = (
    st.sampled_from(
        [
            f"/v2/app/manifests/{DIGEST}",
            "http://cdn.example/x",
            "https://169.254.169.254/",
            "https://[fd00:ec2::254]/",
            "ftp://x/",
            "//other.example/v2/app/blobs/x",
            "https://%zz/",
        ]
    )
    | TEXT
)


@st.composite
def registries(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "status": draw(STATUSES),
        "manifest": draw(BODIES),
        "second": draw(MANIFESTS.map(lambda d: json.dumps(d).encode())),
        "config": draw(CONFIGS.map(lambda d: json.dumps(d).encode()) | BODIES),
        "challenge": draw(CHALLENGES),
        "location": draw(LOCATIONS),
        "token": draw(JSON.map(lambda d: json.dumps(d).encode()) | st.binary(max_size=40)),
    }


def transport(script: dict[str, Any]) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "auth.example":
            return httpx2.Response(200, content=script["token"])
        path = request.url.path
        if path.endswith("/manifests/1"):
            status = script["status"]
            headers: dict[bytes, bytes] = {}  # as a server sends them: bytes, not only ASCII
            if status == 401:
                headers[b"www-authenticate"] = script["challenge"].encode()
            if status in (301, 302, 307):
                headers[b"location"] = script["location"].encode()
            return httpx2.Response(status, headers=headers, content=script["manifest"])
        if "/manifests/" in path:
            return httpx2.Response(200, content=script["second"])
        return httpx2.Response(200, content=script["config"])

    return httpx2.MockTransport(handle)


@FUZZ
@given(registries(), st.booleans())
@example(
    {
        "status": 200,
        "manifest": b'{"config":"x"}',
        "second": b"{}",
        "config": b"{}",
        "challenge": "",
        "location": "",
        "token": b"",
    },
    False,
)
@example(
    {
        "status": 200,
        "manifest": json.dumps({"config": {"digest": DIGEST}}).encode(),
        "second": b"{}",
        "config": b'{"config": {"Entrypoint": "sh", "Cmd": 5}}',
        "challenge": "",
        "location": "",
        "token": b"",
    },
    True,
)
async def test_a_registry_answer_is_a_config_or_a_clean_error(
    script: dict[str, Any], with_secret: bool
) -> None:
    reader = ImageConfigReader(transport=transport(script))
    auth = RegistryAuth(server="reg.example", username="u", password="p") if with_secret else None
    try:
        config = await reader.read("reg.example/app:1", auth)
    except CloudError:  # InvalidSpec (fail the pod) or ProviderUnavailable (retry)
        return
    finally:
        await reader.aclose()
    assert all(isinstance(word, str) for word in (*config.entrypoint, *config.cmd))
