"""The one image-reference parser: Docker's grammar and normalisation, and every caller agrees."""

from __future__ import annotations

import pytest

from vk_trio.imageref import ImageRef, InvalidImageName, parse, registry_of
from vk_trio.pods.pull_secrets import image_registry
from vk_trio.providers.base import InvalidSpec
from vk_trio.providers.images import reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            "my-gpu-image:latest",
            ImageRef(registry="docker.io", repository="library/my-gpu-image", tag="latest"),
        ),
        (
            "nvidia/cuda:11.7.1-base-ubuntu22.04",
            ImageRef(registry="docker.io", repository="nvidia/cuda", tag="11.7.1-base-ubuntu22.04"),
        ),
        ("ghcr.io/acme/app", ImageRef(registry="ghcr.io", repository="acme/app")),
        ("localhost:5000/app:2", ImageRef(registry="localhost:5000", repository="app", tag="2")),
        ("localhost/app", ImageRef(registry="localhost", repository="app")),
        ("Registry.Example/app", ImageRef(registry="registry.example", repository="app")),
        ("index.docker.io/ubuntu", ImageRef(registry="docker.io", repository="library/ubuntu")),
        ("[::1]:5000/app", ImageRef(registry="[::1]:5000", repository="app")),
        (f"app@{DIGEST}", ImageRef(registry="docker.io", repository="library/app", digest=DIGEST)),
        (
            f"quay.io/a/b:1@{DIGEST}",
            ImageRef(registry="quay.io", repository="a/b", tag="1", digest=DIGEST),
        ),
    ],
)
def test_references_are_normalised_as_docker_does(image: str, expected: ImageRef) -> None:
    assert parse(image) == expected


def test_the_reference_asked_for_is_the_digest_else_the_tag_else_latest() -> None:
    assert parse("a").reference == "latest"
    assert parse("a:1").reference == "1"
    assert parse(f"a:1@{DIGEST}").reference == DIGEST


@pytest.mark.parametrize(
    "image",
    [
        "user@evil.com/x",  # was docker.io/library/user to one parser, user@evil.com to the other
        "",
        "Bad Image!",
        "upper/Case",
        "a:b:c",
        "app@sha256:abc",  # a digest has at least 32 hex digits
        "héllo/world",
        "a" * 300,
        "ghcr.io//x",
        "ghcr.io/x/",
        "-leading/dash",
        "x:" + "t" * 200,
        "a" * 64,  # an image id, not a name
        "reg.example:99999999/x",
    ],
)
def test_what_is_not_a_reference_is_refused_by_every_caller(image: str) -> None:
    with pytest.raises(InvalidImageName):
        parse(image)
    with pytest.raises(InvalidImageName):
        image_registry(image)  # the pull-secret lookup never guesses a registry
    with pytest.raises(InvalidSpec):
        reference(image)  # nor does the registry reader


@pytest.mark.parametrize(
    "image",
    ["nvidia/cuda:12", "ubuntu", "ghcr.io/org/img:1", "localhost:5000/x", "a.b/c@" + DIGEST],
)
def test_the_pull_secret_lookup_and_the_registry_reader_agree(image: str) -> None:
    assert image_registry(image) == registry_of(image) == reference(image).registry
