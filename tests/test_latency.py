"""Response-time tables of the simulated clouds: parsing, draws, waits on trio's clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from vk_trio.latency import Latency, Spread, from_flag


def test_a_table_parses_fixed_times_ranges_and_a_default() -> None:
    latency = Latency.parse("createPod=1-3, listPods=0.3,*=0.1")
    assert latency.of("createPod") == Spread(1.0, 3.0)
    assert latency.of("listPods") == Spread(0.3, 0.3)
    assert latency.of("deletePod") == Spread(0.1, 0.1)
    assert str(latency) == "createPod=1-3,listPods=0.3,*=0.1"
    assert Latency().of("anything") == Spread(0.0, 0.0)


@pytest.mark.parametrize("text", ["createPod", "=1", "createPod=fast", "a=3-1", "a=-1", "a=nan"])
def test_a_bad_entry_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="latency"):
        Latency.parse(text)


def test_draws_stay_in_their_range_and_repeat_with_the_seed() -> None:
    first = [Latency({"op": (1.0, 3.0)}, seed=4).draw("op") for _ in range(1)]
    again = [Latency({"op": (1.0, 3.0)}, seed=4).draw("op") for _ in range(1)]
    many = Latency({"op": (1.0, 3.0)}, seed=4)
    draws = [many.draw("op") for _ in range(500)]
    assert first == again
    assert all(1.0 <= d <= 3.0 for d in draws)
    assert 1.8 < sum(draws) / len(draws) < 2.2


def test_the_flag_names_the_preset_or_a_table() -> None:
    preset = {"searchOffers": (0.8, 1.2)}
    assert from_flag("realistic", realistic=preset).of("searchOffers") == Spread(0.8, 1.2)
    assert from_flag("", realistic=preset).of("searchOffers") == Spread(0.0, 0.0)
    assert from_flag("x=2", realistic=preset).of("x") == Spread(2.0, 2.0)


async def test_a_wait_takes_the_drawn_time_on_trio_s_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    latency = Latency({"op": 2.5})
    start = trio.current_time()
    await latency.wait("op")
    assert trio.current_time() - start == pytest.approx(2.5)
    assert latency.waited == {"op": 2.5}
