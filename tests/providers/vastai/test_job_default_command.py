"""A Job that sets no command runs what its image would (ENTRYPOINT, then args or CMD), read from
the image's registry, under the exit-code wrapper; an image that cannot be read rents nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio
import trio.testing

from tests.providers.vastai.conftest import MakeProvider, spec
from tests.providers.vastai.test_lifecycle import rent, until
from vk_trio.providers.base import InstanceState, InvalidSpec, RegistryAuth
from vk_trio.sim.vastai import VastSim, Workload

TRAINER = Workload(entrypoint=(), cmd=("python", "train.py"), run_seconds=60, exit_code=5)


async def test_the_images_cmd_runs_under_the_wrapper_and_its_exit_code_is_reported(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("trainer", TRAINER)
    provider = make_provider()
    instance = await rent(provider, spec(image="trainer:1", restart_policy="Never"))
    machine = sim.instance(int(instance.instance_id))
    assert machine is not None
    assert machine.onstart == "/bin/sh" and machine.args[2:] == ["vk-trio", "python", "train.py"]
    ended = await until(provider, instance.instance_id, lambda i: i.state is InstanceState.EXITED)
    assert ended.exit_code == 5
    assert machine.notes == []


async def test_the_pods_args_replace_the_cmd_after_the_images_entrypoint(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("tool", Workload(entrypoint=("/entry.sh",), cmd=("--help",), run_seconds=5))
    provider = make_provider()
    job = spec(image="tool:2", args=("convert", "--fast"), restart_policy="OnFailure")
    instance = await rent(provider, job)
    machine = sim.instance(int(instance.instance_id))
    assert machine is not None and machine.args[2:] == ["vk-trio", "/entry.sh", "convert", "--fast"]


async def test_a_private_image_is_read_with_the_pods_pull_secret(
    sim: VastSim, make_provider: MakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("registry.example/team/trainer", replace(TRAINER, registry_username="robot"))
    provider = make_provider()
    job = spec(image="registry.example/team/trainer:3", restart_policy="Never")
    with pytest.raises(InvalidSpec, match="imagePullSecret"):
        await rent(provider, job)
    auth = RegistryAuth(server="registry.example", username="robot", password="s3cret-pw")
    instance = await rent(provider, replace(job, registry_auth=auth))
    machine = sim.instance(int(instance.instance_id))
    assert machine is not None and machine.args[-2:] == ["python", "train.py"]


@pytest.mark.parametrize(
    ("image", "message"),
    [("example/unknown:1", "not found"), ("empty:1", "neither ENTRYPOINT nor CMD")],
)
async def test_an_image_whose_program_cannot_be_known_rents_nothing(
    image: str,
    message: str,
    sim: VastSim,
    make_provider: MakeProvider,
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim.script("empty", Workload(entrypoint=(), cmd=()))
    provider = make_provider()
    with pytest.raises(InvalidSpec, match=message):
        await rent(provider, spec(image=image, restart_policy="Never"))
    assert sim.instances() == []
