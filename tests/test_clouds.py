"""The Node condition of a several-cloud node: which cloud is in which state, in one line."""

from __future__ import annotations

import trio
import trio.testing

from vk_trio.clouds import condition
from vk_trio.providers.base import PaymentRequired, ProviderUnavailable
from vk_trio.providers.health import COOLDOWN_INITIAL, Health


async def test_the_condition_names_each_cloud_and_the_worst_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    health = Health(("runpod", "vastai"))
    assert condition(health) == ("True", "CloudsAvailable", "runpod: ok, vastai: ok")
    health.failed("runpod", ProviderUnavailable("503"))
    assert condition(health) == (
        "False",
        "CloudUnavailable",
        "runpod: cooling_down, vastai: ok",
    )
    health.failed("vastai", PaymentRequired("no credit"))
    assert condition(health)[:2] == ("False", "PaymentRequired")
    await trio.sleep(COOLDOWN_INITIAL + 1)
    assert condition(health)[2] == "runpod: ok, vastai: payment_refused"
