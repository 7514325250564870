"""A Job that sets no command runs its image's CMD, read from the image's registry and wrapped
for the exit code; what cannot be read fails the pod naming the image, before anything is paid."""

from __future__ import annotations

import json
import shlex

import httpx2
import pytest
import trio
import trio.testing

from tests.providers.runpod.conftest import make_provider
from tests.providers.runpod.test_requests_and_retries import rent, spec
from vk_trio.providers import exit_marker
from vk_trio.providers.base import (
    InstanceState,
    InvalidSpec,
    ProviderUnavailable,
    RegistryAuth,
)
from vk_trio.providers.images import ImageConfigReader
from vk_trio.providers.runpod import RunPodProvider, mapping
from vk_trio.sim.runpod import RunPodSim, Workload


async def wait_exited(provider: RunPodProvider) -> int | None:
    with trio.fail_after(600):
        while True:
            (instance,) = await provider.list()
            if instance.state is InstanceState.EXITED:
                return instance.exit_code
            await trio.sleep(1)


async def test_a_job_without_a_command_runs_its_image_cmd_and_reports_its_exit_code(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload(
        "trainer:3",
        Workload(cmd=("python", "train.py"), lines=("epoch 1",), duration=9, exit_code=4),
    )
    await rent(provider, spec(image="trainer:3", restart_policy="Never"))
    args = shlex.split(sim.requests_for("createPod")[0].body["args"])
    nonce = exit_marker.nonce_in(args[2])
    assert nonce is not None
    assert args == ["sh", "-c", mapping.wrapper(nonce, "Never"), "vk-trio", "python", "train.py"]
    assert await wait_exited(provider) == 4


async def test_a_job_with_a_command_does_not_ask_the_registry(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    await rent(provider, spec(image="unknown/thing:1", command=("run",), restart_policy="Never"))
    assert sim.images.requests == []


async def test_a_job_whose_image_its_registry_does_not_know_fails_and_rents_nothing(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    job = spec(image="nobody/nothing:1", restart_policy="Never")
    provider.check(job)  # the registry is asked at create, not in the pure check
    with pytest.raises(InvalidSpec, match="nobody/nothing:1: not found"):
        await rent(provider, job)
    assert sim.pods() == []


async def test_a_private_image_config_is_read_with_the_pull_secret_and_refused_without(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload(
        "ghcr.io/acme/private",
        Workload(cmd=("serve",), duration=3, exit_code=0, registry_username="robot"),
    )
    image = "ghcr.io/acme/private:2"
    with pytest.raises(InvalidSpec, match="imagePullSecret"):
        await rent(provider, spec("uid-a", image=image, restart_policy="Never"))
    auth = RegistryAuth(server="ghcr.io", username="robot", password="pw")
    await rent(provider, spec("uid-b", image=image, restart_policy="Never", registry_auth=auth))
    assert shlex.split(sim.requests_for("createPod")[-1].body["args"])[-1] == "serve"


async def test_an_image_with_an_entrypoint_but_no_cmd_is_refused(
    sim: RunPodSim, provider: RunPodProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("entry-only", Workload(entrypoint=("/init",), duration=3))
    with pytest.raises(InvalidSpec, match=r"ENTRYPOINT \['/init'\] and no CMD"):
        await rent(provider, spec(image="entry-only:1", restart_policy="Never"))
    assert sim.pods() == []


async def test_an_unreachable_registry_is_a_retryable_error(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    provider = make_provider(sim, registry_mirror="http://127.0.0.1:9")
    try:
        with pytest.raises(ProviderUnavailable, match="image registry"):
            await rent(provider, spec(image="trainer:3", restart_policy="Never"))
    finally:
        await provider.aclose()
    assert sim.pods() == []


ARM, AMD, CFG = (f"sha256:{c * 64}" for c in "abc")


def docker_hub(seen: list[str]) -> httpx2.MockTransport:
    """Docker Hub's dance: 401 + Bearer challenge, a token, an index, a manifest, a blob."""
    config = {"config": {"Entrypoint": ["/opt/nvidia/nvidia_entrypoint.sh"], "Cmd": ["bash"]}}
    index = {
        "manifests": [
            {"digest": ARM, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": AMD, "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }
    documents = {
        "/v2/nvidia/cuda/manifests/12.4": index,
        f"/v2/nvidia/cuda/manifests/{AMD}": {"config": {"digest": CFG}},
        f"/v2/nvidia/cuda/blobs/{CFG}": config,
    }

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.url.host}{request.url.path}")
        if request.url.host == "auth.docker.io":
            assert request.url.params["scope"] == "repository:nvidia/cuda:pull"
            return httpx2.Response(200, json={"token": "t0k"})
        if request.headers.get("authorization") != "Bearer t0k":
            challenge = (
                'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                'scope="repository:nvidia/cuda:pull"'
            )
            return httpx2.Response(401, headers={"www-authenticate": challenge})
        return httpx2.Response(200, content=json.dumps(documents[request.url.path]).encode())

    return httpx2.MockTransport(handle)


async def test_docker_hub_is_read_with_an_anonymous_token_and_the_amd64_manifest() -> None:
    seen: list[str] = []
    reader = ImageConfigReader(transport=docker_hub(seen))
    try:
        config = await reader.read("nvidia/cuda:12.4")
        again = await reader.read("nvidia/cuda:12.4")
    finally:
        await reader.aclose()
    assert config.entrypoint == ("/opt/nvidia/nvidia_entrypoint.sh",)
    assert config.cmd == ("bash",) and again == config
    assert seen == [
        "registry-1.docker.io/v2/nvidia/cuda/manifests/12.4",
        "auth.docker.io/token",
        "registry-1.docker.io/v2/nvidia/cuda/manifests/12.4",
        f"registry-1.docker.io/v2/nvidia/cuda/manifests/{AMD}",  # the token is reused
        f"registry-1.docker.io/v2/nvidia/cuda/blobs/{CFG}",
    ]  # and the second read came from the cache
