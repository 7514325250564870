"""Fuzz targets for imagePullSecrets (``.dockerconfigjson``) and image references: a Secret is
a credential or unreadable, a reference is parsed by the one parser or refused, never a crash,
and a credential only ever goes to the registry the reference names."""

from __future__ import annotations

import base64
import json

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ, JSON, TEXT, nested
from vk_trio.imageref import InvalidImageName, parse
from vk_trio.kube.models import ObjectMeta, Secret
from vk_trio.pods.pull_secrets import pull_credential

ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "auth": TEXT | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        "username": TEXT,
        "password": TEXT,
    },
)
CONFIGS = st.one_of(
    st.dictionaries(TEXT, ENTRY, max_size=3).map(lambda auths: {"auths": auths}),
    JSON,
).map(lambda document: json.dumps(document).encode())
DOCUMENTS = CONFIGS | st.binary(max_size=200) | st.just(nested(5000))


def secret(document: bytes, *, encode: bool = True) -> Secret:
    raw = base64.b64encode(document).decode() if encode else document.decode("latin-1")
    return Secret(metadata=ObjectMeta(name="s"), data={".dockerconfigjson": raw})


@FUZZ
@given(DOCUMENTS, st.booleans(), st.sampled_from(["ubuntu", "ghcr.io/a/b:1", "reg.example/x"]))
@example(b'{"auths": {"docker.io": {"auth": ' + b"1" * 5000 + b"}}}", True, "ubuntu")
@example(nested(5000), True, "ubuntu")
@example(json.dumps({"auths": {"docker.io": {"auth": "é"}}}).encode(), True, "ubuntu")
@example("é".encode(), False, "ubuntu")
def test_a_docker_config_is_a_credential_or_unreadable(
    document: bytes, encode: bool, image: str
) -> None:
    lookup = pull_credential(image, [secret(document, encode=encode)])
    if lookup.auth is not None:
        assert lookup.auth.server == parse(image).registry
        assert lookup.auth.username and lookup.auth.password
    assert all(name == "s" for name, _ in lookup.unreadable)


REFERENCE_CHARS = st.sampled_from("abcXYZ09.-_/:@[]²é ") | st.characters(codec="utf-8")


@FUZZ
@given(st.text(REFERENCE_CHARS, max_size=60) | TEXT)
@example("user@evil.com/x")
@example("a" * 300)
def test_an_image_reference_is_parsed_or_refused(image: str) -> None:
    try:
        ref = parse(image)
    except InvalidImageName:
        return
    again = parse(str(ref))  # the normalised form means the same image
    assert (again.registry, again.repository, again.reference) == (
        ref.registry,
        ref.repository,
        ref.reference,
    )
    assert ref.registry == ref.registry.lower() and ref.repository
