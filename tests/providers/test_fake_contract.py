"""The provider contract suite against FakeProvider, in memory and with a shared state file.

The fake is only worth trusting if it keeps the same promises as the real providers; this runs
the exact suite they run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.providers.contract import *  # noqa: F403
from tests.providers.contract import FAILURE_KINDS, NODE, ContractTarget, ProviderFactory
from vk_trio.providers.fake import FakeProvider, trio_clock

DELETE_LATENCY = 5.0


@pytest.fixture(params=["in-memory", "state-file"])
def provider_factory(request: pytest.FixtureRequest, tmp_path: Path) -> ProviderFactory:
    state_file = tmp_path / "fake-cloud.json" if request.param == "state-file" else None
    cloud = FakeProvider(NODE, clock=trio_clock(), delete_latency=DELETE_LATENCY)

    def factory(node_name: str = NODE) -> ContractTarget:
        # With a state file every target is a separate object that shares only the file, as
        # two processes would; in memory, siblings share the books directly.
        provider = (
            FakeProvider(
                node_name,
                clock=trio_clock(),
                state_file=state_file,
                delete_latency=DELETE_LATENCY,
            )
            if state_file
            else cloud.sibling(node_name)
        )
        return ContractTarget(
            provider=provider,
            node_name=node_name,
            script=provider.script,
            seed_foreign_instance=provider.seed_foreign_instance,
            fail_next_request=lambda kind: provider.fail_next("list", FAILURE_KINDS[kind](kind)),
            delete_latency=DELETE_LATENCY,
        )

    return factory
