"""The simulated Vast.ai runs an image's ENTRYPOINT and CMD as Docker does, and serves both from
its registry stand-in, so a client can read an image's default command as a runtime would."""

from __future__ import annotations

from typing import Any

import pytest

from vk_trio.providers.base import InvalidSpec
from vk_trio.providers.images import ImageConfigReader
from vk_trio.sim.vastai import VastSim, Workload, seed_workloads

SCRIPTED = Workload(entrypoint=("/entry.sh",), cmd=("serve", "--port", "80"))


def rent(sim: VastSim, image: str, **fields: Any) -> list[str]:
    offer = sim.marketplace.take(sim.marketplace.all()[0].id)
    assert offer is not None
    return sim.rent(offer, owner="k", image=image, **fields).argv


async def test_args_replace_the_cmd_and_onstart_replaces_entrypoint_and_cmd_as_in_docker() -> None:
    sim = VastSim()
    sim.script("example/web", SCRIPTED)
    assert rent(sim, "example/web:2") == ["/entry.sh", "serve", "--port", "80"]
    assert rent(sim, "example/web:2", runtype="args", args=["debug"]) == ["/entry.sh", "debug"]
    assert rent(sim, "example/web:2", runtype="args", onstart="/bin/sh", args=["-c", "x"]) == [
        "/bin/sh",
        "-c",
        "x",
    ]


async def test_the_registry_serves_scripted_images_and_knows_no_others(sim: VastSim) -> None:
    sim.script("example/web", SCRIPTED)
    for image, workload in seed_workloads().items():
        sim.script(image, workload)
    reader = ImageConfigReader(mirror=sim.registry_url)
    try:
        web = await reader.read("example/web:2")
        seed_job = await reader.read("my-gpu-image:latest")
        with pytest.raises(InvalidSpec, match="not found"):
            await reader.read("example/unscripted:1")
    finally:
        await reader.aclose()
    assert (web.entrypoint, web.cmd) == (("/entry.sh",), ("serve", "--port", "80"))
    assert (seed_job.entrypoint, seed_job.cmd) == ((), ("python", "train.py"))
    assert sim.journal == []  # registry reads are not Vast.ai API calls
