"""imagePullSecrets → the registry credential for a pod's image."""

from __future__ import annotations

import base64
import json

import pytest

from vk_trio.errors import InvalidInput
from vk_trio.kube.models import ObjectMeta, Secret
from vk_trio.pods.pull_secrets import credential_for, image_registry, pull_credential


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def docker_secret(auths: dict[str, dict[str, str]]) -> Secret:
    return Secret(
        metadata=ObjectMeta(name="pull"),
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": b64(json.dumps({"auths": auths}))},
    )


def test_image_registry_defaults_to_docker_hub() -> None:
    assert image_registry("nvidia/cuda:12") == "docker.io"
    assert image_registry("ubuntu") == "docker.io"
    assert image_registry("ghcr.io/org/img:1") == "ghcr.io"
    assert image_registry("localhost:5000/x") == "localhost:5000"


def test_the_credential_for_the_images_registry_is_found_from_auth_or_fields() -> None:
    secret = docker_secret(
        {
            "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
            "ghcr.io": {"username": "gh", "password": "tok"},
        }
    )
    hub = credential_for("pytorch/pytorch:2", [secret])
    assert hub is not None and (hub.username, hub.password) == ("hubuser", "hubpass")
    gh = credential_for("ghcr.io/org/trainer:1", [secret])
    assert gh is not None and gh.server == "ghcr.io"
    assert credential_for("quay.io/x/y", [secret]) is None


def test_broken_secrets_are_ignored_not_fatal() -> None:
    broken = Secret(metadata=ObjectMeta(name="b"), data={".dockerconfigjson": "!!notbase64"})
    assert credential_for("ubuntu", [broken]) is None
    assert "hubpass" not in repr(
        credential_for("ubuntu", [docker_secret({"docker.io": {"auth": b64("u:hubpass")}})])
    )


def raw_secret(document: bytes, name: str = "hostile") -> Secret:
    return Secret(
        metadata=ObjectMeta(name=name),
        data={".dockerconfigjson": base64.b64encode(document).decode()},
    )


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b'{"auths": {"docker.io": {"auth": ' + b"1" * 5000 + b"}}}", "unexpected shape"),
        (b"[" * 5000, "nested too deeply"),
        (json.dumps({"auths": {"docker.io": {"auth": "é"}}}).encode(), "non-ASCII"),
        (json.dumps({"auths": {"docker.io": {"auth": "!!!!"}}}).encode(), "base64"),
        (json.dumps({"auths": {"docker.io": {"auth": "/w=="}}}).encode(), "UTF-8"),
        (b'"just a string"', "no 'auths'"),
    ],
)
def test_a_hostile_docker_config_is_skipped_as_unreadable_never_a_crash(
    document: bytes, why: str
) -> None:
    good = docker_secret({"docker.io": {"auth": b64("u:pw")}})
    lookup = pull_credential("ubuntu", [raw_secret(document), good])
    assert lookup.auth is not None and lookup.auth.username == "u"  # the next Secret still counts
    ((name, reason),) = lookup.unreadable
    assert name == "hostile" and why in reason
    assert credential_for("ubuntu", [raw_secret(document)]) is None


def test_a_credential_goes_only_to_the_registry_it_names() -> None:
    secret = docker_secret({"evil.com": {"username": "u", "password": "p"}})
    with pytest.raises(InvalidInput):  # user@evil.com/x is no reference: no credential goes out
        credential_for("user@evil.com/x", [secret])
    assert credential_for("docker.io/user/x", [secret]) is None
