"""CPU counters from utilisation readings: the trapezoid rule between readings, a node counter
that never goes down when an instance ends, nothing counted past the last reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vk_trio.pods.usage import UsageHistory
from vk_trio.providers.base import Instance, InstanceState, Usage

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def inst(iid: str, cores: float | None, at: float) -> Instance:
    usage = Usage(at=T0 + timedelta(seconds=at), cpu_cores=cores)
    return Instance(
        instance_id=iid, node_name="n", pod_uid=iid, state=InstanceState.RUNNING, usage=usage
    )


def test_cpu_seconds_grow_by_the_mean_of_two_readings_times_the_gap() -> None:
    history = UsageHistory()
    history.record([inst("a", 1.0, 0), inst("b", 2.0, 0)])
    assert history.cpu("a") is not None and history.cpu("a").seconds == 0.0  # type: ignore[union-attr]
    history.record([inst("a", 3.0, 10), inst("b", 2.0, 10)])
    a, b = history.cpu("a"), history.cpu("b")
    assert a is not None and b is not None
    assert (a.seconds, b.seconds, a.cores) == (20.0, 20.0, 3.0)
    assert history.node_cpu_seconds == 40.0
    history.record([inst("a", 3.0, 10)])  # the same reading again: nothing grows
    history.record([inst("a", None, 20)])  # a list without a reading keeps the counter
    assert history.cpu("a") is not None and history.cpu("a").seconds == 20.0  # type: ignore[union-attr]
    history.record([])  # both ended
    assert history.cpu("a") is None
    assert history.node_cpu_seconds == 40.0  # never goes down
    assert history.node_cpu_at == T0 + timedelta(seconds=10)


def test_instance_equality_ignores_usage() -> None:
    assert inst("a", 1.0, 0) == inst("a", 2.0, 5)
