"""Cached objects share equal strs and datetimes: same values, one copy, a bounded pool."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from vk_trio.kube.models import Pod
from vk_trio.kube.sharing import ValuePool, share_values

RUNNING_POD = (Path(__file__).parent / "data" / "running_pod.json").read_bytes()


def running_pod(i: int) -> bytes:
    """The stored pod with what really differs between a node's pods made unique."""
    raw: dict[str, Any] = msgspec.json.decode(RUNNING_POD)
    raw["metadata"]["name"] = f"train-{i}"
    raw["metadata"]["uid"] = f"079b8661-f696-4821-8098-{i:012d}"
    raw["metadata"]["resourceVersion"] = str(100_000 + i)
    raw["status"]["podIP"] = raw["status"]["podIPs"][0]["ip"] = f"198.51.{i // 256}.{i % 256}"
    raw["status"]["containerStatuses"][0]["containerID"] = f"runpod://pod{i:08d}"
    return msgspec.json.encode(raw)


def held_per_pod(make: Any, bodies: list[bytes]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        kept = [make(body) for body in bodies]
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == len(bodies)
    return held / len(bodies)


def detached(pod: Pod) -> Pod:
    """A decoded pod that no longer pins its response (the least any cache must hold)."""
    pod.spec.volumes = [msgspec.Raw(bytes(volume)) for volume in pod.spec.volumes]
    return pod


def test_shared_pods_hold_under_sixty_percent_of_decoded_copies() -> None:
    bodies = [running_pod(i) for i in range(2000)]
    pool = ValuePool()
    decoded = held_per_pod(lambda body: detached(msgspec.json.decode(body, type=Pod)), bodies)
    shared = held_per_pod(
        lambda body: share_values(msgspec.json.decode(body, type=Pod), pool), bodies
    )
    assert shared < 0.6 * decoded, (decoded, shared)


def test_sharing_changes_no_value() -> None:
    body = running_pod(7)
    pod = share_values(msgspec.json.decode(body, type=Pod), ValuePool())
    assert pod == msgspec.json.decode(body, type=Pod)
    assert msgspec.json.encode(pod) == msgspec.json.encode(msgspec.json.decode(body, type=Pod))


def test_equal_values_of_two_pods_become_one_object() -> None:
    pool = ValuePool()
    a = share_values(msgspec.json.decode(running_pod(1), type=Pod), pool)
    b = share_values(msgspec.json.decode(running_pod(2), type=Pod), pool)
    assert a.metadata.namespace is b.metadata.namespace
    assert a.spec.containers[0].image is b.status.container_statuses[0].image
    assert a.status.conditions[0].status is b.status.conditions[3].status
    times = {id(c.last_transition_time) for c in [*a.status.conditions, *b.status.conditions]}
    assert len(times) == 1
    [(key_a, _)] = a.spec.containers[0].resources.limits.items()
    [(key_b, _)] = b.spec.containers[0].resources.requests.items()
    assert key_a is key_b
    assert a.metadata.uid is not b.metadata.uid and a.metadata.uid != b.metadata.uid


def test_a_raw_value_is_copied_out_of_its_decode_buffer() -> None:
    buffer = bytearray(RUNNING_POD)
    pod = share_values(msgspec.json.decode(buffer, type=Pod), ValuePool())
    volume = bytes(pod.spec.volumes[0])
    buffer[:] = b" " * len(buffer)  # the response buffer is reused or freed
    assert bytes(pod.spec.volumes[0]) == volume
    assert msgspec.json.decode(pod.spec.volumes[0])["name"].startswith("kube-api-access-")


ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])


@given(st.lists(st.one_of(st.text(max_size=8), st.datetimes(timezones=ZONES)), max_size=300))
def test_the_pool_stays_bounded_and_always_answers_the_same_value(
    values: list[str | datetime],
) -> None:
    pool = ValuePool(size=16)
    for value in values:
        got = pool.get(value)
        assert got == value and type(got) is type(value)
        if isinstance(value, datetime):  # the same instant in another zone is another value
            assert isinstance(got, datetime) and got.utcoffset() == value.utcoffset()
        assert len(pool) <= 16


def test_the_same_instant_written_in_another_zone_is_not_shared() -> None:
    pool = ValuePool()
    utc = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    paris = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert pool.get(utc) is utc
    assert pool.get(paris) is paris and paris.utcoffset() == timedelta(hours=1)
