"""The burst decision loop is a fault barrier: a pass that fails unexpectedly is logged and the
next pass comes, so burst never takes the node agent down with it."""

from __future__ import annotations

import httpx2
import pytest
import trio

from tests.kube.fakes import StaticAccess
from vk_trio.config import Config
from vk_trio.errors import KubeError
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.pods.burst import Burst
from vk_trio.pods.cache import PodCache


def _refuse(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(500)


@pytest.mark.parametrize("failure", [ValueError("odd job"), KubeError("api server away")])
async def test_a_failed_pass_is_reported_and_the_next_pass_still_runs(
    failure: Exception, autojump_clock: trio.testing.MockClock
) -> None:
    config = Config(node_name="vk", offload=True, reconcile_interval=5.0)
    async with KubeClient(StaticAccess(), transport=httpx2.MockTransport(_refuse)) as client:
        burst = Burst(
            client=client,
            config=config,
            cache=PodCache(lambda uid: None),
            events=EventRecorder(client, component="vk-trio", host="vk"),
        )
        passes = 0

        async def decide_once() -> None:
            nonlocal passes
            passes += 1
            if passes == 1:
                raise failure

        burst.decide_once = decide_once  # type: ignore[method-assign]
        with trio.move_on_after(12):
            await burst._loop()
    assert passes >= 2
    assert burst.stats.errors == 1
