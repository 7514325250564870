"""RunPod's ``runtime`` as Usage: GPU utilisation per GPU; its CPU and memory percentages are of
an allocation a GPU pod's v2 object does not state, so they are left out."""

from __future__ import annotations

import msgspec

from vk_trio.providers.runpod import mapping, models


def pod(runtime: dict[str, object] | None) -> models.Pod:
    raw = {
        "id": "p1",
        "name": "vk-trio-n-uid-0",
        "status": "RUNNING",
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 2},
        "runtime": runtime,
    }
    return msgspec.convert(raw, models.Pod)


def test_gpu_utilisation_is_kept_and_cpu_and_memory_percentages_are_not() -> None:
    runtime = {
        "uptime": 60,
        "gpus": [{"util": 94, "memoryUtil": 78}, {"util": 10, "memoryUtil": 5}],
        "cpu": {"util": 45},
        "memory": {"util": 30},
    }
    usage = mapping.usage_of(pod(runtime))
    assert usage is not None
    assert usage.cpu_cores is None and usage.memory_bytes is None
    assert [(g.index, g.model, g.duty_cycle) for g in usage.gpus] == [
        (0, "NVIDIA GeForce RTX 4090", 94.0),
        (1, "NVIDIA GeForce RTX 4090", 10.0),
    ]
    assert all(g.memory_total_bytes is None and g.memory_used_bytes is None for g in usage.gpus)


def test_no_runtime_or_a_nonsense_figure_gives_nothing() -> None:
    assert mapping.usage_of(pod(None)) is None
    usage = mapping.usage_of(pod({"gpus": [{"util": 250}]}))
    assert usage is not None and usage.gpus[0].duty_cycle is None
