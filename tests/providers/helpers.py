"""Shared pieces of the fake's tests: a small catalog, a spec builder, a virtual-time reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from vk_trio.providers.base import InstanceSpec, Requirements
from vk_trio.providers.fake import DEFAULT_EPOCH, CatalogEntry, FakeProvider, Workload, trio_clock

NODE = "vk-test"
CHEAP = CatalogEntry(
    offer_id="cheap", gpu_type="RTX 3090", gpu_memory_gb=24, price_per_gpu_hour=0.25, capacity=1
)
MID = CatalogEntry(
    offer_id="mid", gpu_type="RTX 4090", gpu_memory_gb=24, price_per_gpu_hour=0.5, capacity=2
)
BIG = CatalogEntry(
    offer_id="big",
    gpu_type="A100 80GB",
    gpu_memory_gb=80,
    price_per_gpu_hour=1.5,
    capacity=1,
    max_gpu_count=4,
)
CATALOG = (MID, BIG, CHEAP)  # deliberately unsorted


def fake(
    node_name: str = NODE,
    *,
    state_file: Path | None = None,
    delete_latency: float = 0.0,
    default_workload: Workload | None = None,
    clock: Callable[[], float] | None = None,
) -> FakeProvider:
    """A FakeProvider with the small test catalog, on trio's (virtual) clock by default."""
    return FakeProvider(
        node_name,
        catalog=CATALOG,
        clock=clock or trio_clock(),
        state_file=state_file,
        delete_latency=delete_latency,
        default_workload=default_workload or Workload(boot_seconds=10, start_seconds=5),
    )


def spec(
    *,
    node_name: str = NODE,
    image: str = "example/app:1",
    pod_uid: str = "uid-1",
    attempt: int = 0,
    annotations: Mapping[str, str] | None = None,
    gpu_count: int = 1,
    gpu_memory_gb: float | None = None,
    max_price_per_hour: float | None = None,
    restart_policy: str = "Never",
) -> InstanceSpec:
    return InstanceSpec(
        node_name=node_name,
        namespace="default",
        pod_name=f"pod-{pod_uid}",
        pod_uid=pod_uid,
        attempt=attempt,
        image=image,
        restart_policy=restart_policy,
        need=Requirements(
            gpu_count=gpu_count,
            gpu_memory_gb=gpu_memory_gb,
            max_price_per_hour=max_price_per_hour,
            annotations=dict(annotations or {}),
        ),
    )


def now() -> float:
    """The epoch second the fakes in these tests see (trio_clock's default epoch)."""
    return DEFAULT_EPOCH + trio.current_time()
