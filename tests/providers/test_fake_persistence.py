"""The fake's state file: one marketplace for several provider objects and processes.

End-to-end tests kill the node agent with ``kill -9`` and start it again; the cloud must still
hold exactly the instances it had, or the tests could not tell a duplicate rental or an orphan
from a fake that forgot. These tests hold the file to that.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio

from tests.providers.helpers import NODE, spec
from tests.providers.helpers import fake as fake_on_trio_time
from vk_trio.providers.base import Instance, InstanceSpec, ProviderUnavailable
from vk_trio.providers.fake import FakeProvider

# Processes share the wall clock, not trio's (each trio run has its own offset).
# A node agent in another process: rents the instance for pod uid-1, then dies by SIGKILL
# before it can say so (nothing is flushed or closed on its way out).
RENT_THEN_DIE = textwrap.dedent(
    """
    import os, signal, sys, time, trio
    from pathlib import Path
    from tests.providers.helpers import fake, spec

    async def main():
        provider = fake(state_file=Path(sys.argv[1]), clock=time.time)
        s = spec()
        await provider.create(s, (await provider.offers(s.need))[0])
        if sys.argv[2] == "die":
            os.kill(os.getpid(), signal.SIGKILL)

    trio.run(main)
    """
)


def fake(node_name: str = NODE, *, state_file: Path) -> FakeProvider:
    return fake_on_trio_time(node_name, state_file=state_file, clock=time.time)


async def rent(provider: FakeProvider, s: InstanceSpec) -> Instance:
    return await provider.create(s, (await provider.offers(s.need))[0])


async def run_agent(state_file: Path, how: str) -> int:
    done = await trio.run_process(
        [sys.executable, "-c", RENT_THEN_DIE, str(state_file), how],
        check=False,
        cwd=Path(__file__).parents[2],
    )
    return done.returncode


async def test_two_provider_objects_with_one_state_file_see_the_same_instances(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "cloud.json"
    first, second = fake(state_file=state_file), fake(state_file=state_file)
    rented = await rent(first, spec())
    assert [i.instance_id for i in await second.list()] == [rented.instance_id]
    assert (await rent(second, spec())).instance_id == rented.instance_id
    await second.delete(rented.instance_id)
    assert await first.list() == []
    assert [e.deleted_at is not None for e in first.ledger()] == [True]


async def test_an_agent_killed_with_sigkill_leaves_its_instance_for_the_next_one(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "cloud.json"
    assert await run_agent(state_file, "die") == -signal.SIGKILL
    restarted = fake(state_file=state_file)
    (orphan,) = await restarted.list()
    assert orphan.key == spec().key
    assert (await rent(restarted, spec())).instance_id == orphan.instance_id
    assert len(restarted.ledger()) == 1


async def test_concurrent_processes_never_rent_one_key_twice(tmp_path: Path) -> None:
    state_file = tmp_path / "cloud.json"
    codes: list[int] = []

    async def agent() -> None:
        codes.append(await run_agent(state_file, "live"))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(agent)
    assert codes == [0, 0, 0, 0]
    assert len(fake(state_file=state_file).ledger()) == 1


async def test_nodes_sharing_a_state_file_see_only_their_own_instances(tmp_path: Path) -> None:
    state_file = tmp_path / "cloud.json"
    ours, theirs = fake(state_file=state_file), fake("vk-other", state_file=state_file)
    foreign = fake("vk-third", state_file=state_file).seed_foreign_instance()
    mine = await rent(ours, spec())
    other = await rent(theirs, spec(node_name="vk-other"))  # same pod uid, other node
    assert [i.instance_id for i in await ours.list()] == [mine.instance_id]
    assert [i.instance_id for i in await theirs.list()] == [other.instance_id]
    for instance_id in (other.instance_id, foreign):
        await ours.delete(instance_id)
    assert {i.instance_id for i in ours.live_instances(all_nodes=True)} == {
        mine.instance_id,
        other.instance_id,
        foreign,
    }


async def test_state_file_is_replaced_whole_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "cloud.json"
    provider = fake(state_file=state_file)
    rented = await rent(provider, spec())
    await provider.delete(rented.instance_id)
    assert sorted(os.listdir(tmp_path)) == ["cloud.json", "cloud.json.lock"]
    books = json.loads(state_file.read_text())
    assert [i["instance_id"] for i in books["instances"]] == [rented.instance_id]


async def test_a_retried_create_or_delete_does_not_rewrite_the_state_file(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "cloud.json"
    provider = fake(state_file=state_file)
    await rent(provider, spec())
    inode = os.stat(state_file).st_ino
    await rent(provider, spec())
    await provider.delete("fake-999999")
    assert os.stat(state_file).st_ino == inode


async def test_an_unreadable_state_file_is_a_provider_error(tmp_path: Path) -> None:
    state_file = tmp_path / "cloud.json"
    state_file.write_text("{not json")
    provider = fake(state_file=state_file)
    with pytest.raises(ProviderUnavailable, match="unreadable"):
        await provider.list()
    with pytest.raises(ProviderUnavailable, match="unusable"):
        await provider.delete("fake-000001")
