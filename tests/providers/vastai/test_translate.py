"""A pod becomes the create request Vast.ai documents, and our labels find our instances again."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.providers.vastai.conftest import spec
from vk_trio.providers import exit_marker
from vk_trio.providers.base import InvalidSpec, RegistryAuth
from vk_trio.providers.vastai import translate
from vk_trio.sim.vastai.shell import Command, run_script


def test_command_becomes_the_entrypoint_override_and_args_follow_it() -> None:
    body = translate.create_body(
        spec(command=("python", "-u", "serve.py"), args=("--port", "8000"), ports=(8000,)),
        disk_gb=30,
    )
    assert body["runtype"] == "args"
    assert body["onstart"] == "python"
    assert body["args"] == ["-u", "serve.py", "--port", "8000"]
    assert body["env"] == {"-p 8000:8000": "1"}
    assert body["cancel_unavail"] is True
    assert body["disk"] == 30
    assert "price" not in body  # present would mean an interruptible bid


def test_without_a_command_the_image_entrypoint_runs_with_the_args() -> None:
    assert "onstart" not in translate.create_body(spec(args=("--x",)), disk_gb=10)
    assert translate.create_body(spec(args=("--x",)), disk_gb=10)["args"] == ["--x"]
    bare = translate.create_body(spec(), disk_gb=10)
    assert "onstart" not in bare and "args" not in bare


NONCE = "00112233445566ff"


def test_a_job_command_runs_under_the_exit_code_wrapper() -> None:
    job = spec(command=("python", "job.py"), args=("--epochs", "3"), restart_policy="Never")
    body = translate.create_body(job, disk_gb=10, nonce=NONCE)
    assert body["onstart"] == "/bin/sh"
    assert body["args"][0] == "-c"
    assert body["args"][2:] == ["vk-trio", "python", "job.py", "--epochs", "3"]
    assert body["label"].endswith("/job")
    assert translate.nonce_of(body["args"]) == NONCE
    # the wrapper, run by a shell, prints the marker with the command's code and idles
    timeline = run_script(
        [body["onstart"], *body["args"]], Command(run_seconds=5, exit_code=42), started_epoch=100
    )
    assert timeline.exit_at is None
    marker = exit_marker.parse(timeline.lines[-1][1], NONCE)
    assert marker == exit_marker.ExitMarker(code=42, at=105.0)


def test_an_always_pod_runs_under_the_wrapper_that_restarts_it_in_place() -> None:
    pod = spec(command=("python", "serve.py"))
    body = translate.create_body(pod, disk_gb=10, nonce=NONCE)
    assert not body["label"].endswith("/job")
    timeline = run_script(
        [body["onstart"], *body["args"]], Command(run_seconds=60, exit_code=0), started_epoch=100
    )
    markers = [exit_marker.parse(text, NONCE) for _, text in timeline.lines]
    assert markers[:2] == [
        exit_marker.ExitMarker(code=0, run=0, at=160.0),
        exit_marker.ExitMarker(code=0, run=1, at=230.0),  # restarted 10 s later, same machine
    ]
    assert timeline.exit_at is None


def test_without_a_nonce_nothing_is_wrapped() -> None:
    body = translate.create_body(spec(command=("run",), restart_policy="Never"), disk_gb=10)
    assert body["onstart"] == "run" and translate.nonce_of(body.get("args")) is None


def test_a_job_without_a_command_runs_its_images_program_under_the_wrapper() -> None:
    job = spec(restart_policy="OnFailure", args=("--x",))
    body = translate.create_body(job, disk_gb=10, program=("/entry.sh", "--x"), nonce=NONCE)
    assert body["onstart"] == "/bin/sh"
    assert body["args"][2:] == ["vk-trio", "/entry.sh", "--x"]
    assert translate.wrapped(body["args"])
    with pytest.raises(InvalidSpec, match="4096"):
        translate.check(job, ("x" * 5000,))  # the image's program counts against the limit


node_names = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?", fullmatch=True)
uids = st.from_regex(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", fullmatch=True
)


@given(node=node_names, uid=uids, attempt=st.integers(0, 10_000), job=st.booleans())
def test_a_label_names_its_node_and_key_and_fits_vast_ai(
    node: str, uid: str, attempt: int, job: bool
) -> None:
    pod = spec(
        node_name=node,
        pod_uid=uid,
        attempt=attempt,
        command=("x",),
        restart_policy="Never" if job else "Always",
    )
    text = translate.label(pod)
    assert len(text) <= translate.MAX_LABEL
    owner = translate.owner(text)
    assert owner is not None
    assert (owner.node_tag, owner.pod_uid, owner.attempt, owner.job) == (
        translate.node_tag(node),
        uid,
        attempt,
        job,
    )
    assert owner.key == pod.key


@pytest.mark.parametrize(
    "text", [None, "", "my training run", "vk-trio/", "vk-trio/node/uid", "vk-trio/node/uid.x"]
)
def test_labels_that_are_not_ours_name_no_owner(text: str | None) -> None:
    assert translate.owner(text) is None


def test_very_long_node_names_get_a_short_stable_tag() -> None:
    long_a, long_b = "a" * 200, "a" * 199 + "b"
    assert translate.node_tag(long_a) == translate.node_tag(long_a)
    assert translate.node_tag(long_a) != translate.node_tag(long_b)
    assert len(translate.node_tag(long_a)) < 160


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"image": ""}, "image"),
        ({"env": {"-v /:/host": "1"}}, "env name"),
        ({"env": {"BIG": "x" * 300}}, "env entry"),
        ({"env": {f"K{i}": "v" * 200 for i in range(200)}}, "in total"),
        ({"command": ("sh", "-c", "x" * 5000)}, "4096"),
        (
            {"registry_auth": RegistryAuth(server="ghcr.io", username="a b", password="p")},
            "whitespace",
        ),
        ({"pod_uid": "uid with spaces"}, "label"),
    ],
)
def test_what_vast_ai_would_refuse_is_an_invalid_spec(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidSpec, match=reason):
        translate.check(replace(spec(), **change))  # type: ignore[arg-type]


def test_registry_credentials_become_image_login() -> None:
    pod = replace(
        spec(), registry_auth=RegistryAuth(server="ghcr.io", username="bot", password="tok")
    )
    assert translate.create_body(pod, disk_gb=10)["image_login"] == "-u bot -p tok ghcr.io"
