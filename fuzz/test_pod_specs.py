"""Fuzz targets for what a tenant writes in a pod: resource quantities, the spec as a whole
(translate), node admission, and the providers' annotations. Each returns a value or raises
the clean error its callers handle (ValueError, InvalidSpec, InvalidAnnotation), never another.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ, NUMBERS, TEXT
from vk_trio.kube.models import Pod
from vk_trio.pods.admission import Admission, Capacity
from vk_trio.pods.quantity import bytes_, cpu_millis, gb, mb, parse_quantity
from vk_trio.pods.translate import check_pod, to_instance_spec
from vk_trio.providers.base import InvalidAnnotation, InvalidSpec, Requirements
from vk_trio.providers.runpod.annotations import parse as runpod_annotations
from vk_trio.providers.vastai import selection

QUANTITY_CHARS = st.sampled_from("0123456789.eE+-kKMGTPEimnu ²٣")
QUANTITIES: st.SearchStrategy[Any] = st.text(QUANTITY_CHARS, max_size=12) | TEXT | NUMBERS
RESOURCES = st.sampled_from(["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu", "x/y"])


@FUZZ
@given(QUANTITIES)
@example("1e400")
@example("1e1000")
@example("9" * 1001)
def test_quantities_are_a_number_or_a_value_error(value: Any) -> None:
    for read in (parse_quantity, cpu_millis, bytes_, mb, gb):
        with contextlib.suppress(ValueError):
            read(value)


def pod(resources: dict[str, Any], ports: list[Any], image: str, uid: str = "u") -> Pod:
    manifest = {
        "metadata": {"name": "p", "namespace": "ns", "uid": uid},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": image,
                    "resources": resources,
                    "ports": [{"containerPort": p} for p in ports],
                }
            ]
        },
    }
    return msgspec.convert(manifest, Pod)


AMOUNTS = st.dictionaries(
    RESOURCES, QUANTITIES.filter(lambda v: not isinstance(v, bool)), max_size=4
)


@FUZZ
@given(AMOUNTS, AMOUNTS, st.lists(st.integers(1, 65535), max_size=3), TEXT)
@example({"ephemeral-storage": "1e400"}, {}, [], "x")
@example({"nvidia.com/gpu": "1e400"}, {}, [], "x")
@example({"cpu": "1e400"}, {}, [], "x")
@example({}, {"ephemeral-storage": "1E"}, [], "x")  # over --max-disk-gb: InvalidSpec, clean
def test_a_pod_spec_is_an_instance_spec_or_an_invalid_spec(
    limits: dict[str, Any], requests: dict[str, Any], ports: list[int], image: str
) -> None:
    try:
        subject = pod({"limits": limits, "requests": requests}, ports, image)
    except msgspec.ValidationError:
        return  # the API server would not store it
    try:
        check_pod(subject)
        spec = to_instance_spec(
            subject,
            node_name="n",
            env={},
            secret_env_names=frozenset(),
            registry_auth=None,
            annotations={},
            attempt=0,
        )
    except InvalidSpec:
        return
    need = spec.need
    assert need.gpu_count >= 0 and need.cpu_millis >= 0 and need.memory_mb >= 0
    with contextlib.suppress(InvalidSpec):  # more than the node rents: the pod fails, clean
        selection.select(need, selection.Policy(max_gpu_price=0.5, max_disk_gb=1000))


@FUZZ
@given(st.lists(st.tuples(AMOUNTS, AMOUNTS), max_size=6))
@example([({"nvidia.com/gpu": "1e400"}, {})])
def test_admission_decides_every_pod_without_an_error(
    pods: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    node = Admission(Capacity.of(pods=3, cpu="4", memory="16Gi", gpus=2))
    made = []
    for index, (limits, requests) in enumerate(pods):
        try:
            made.append(pod({"limits": limits, "requests": requests}, [], "x", f"u{index}"))
        except msgspec.ValidationError:
            continue
    node.admit(made)
    count, used = node.used
    assert count <= 3 and used.gpus <= 2 and used.cpu_millis <= 4000


ANNOTATION_KEYS = st.sampled_from(
    [
        "runpod.io/required-gpu-memory",
        "runpod.io/cloud-type",
        "runpod.io/datacenter-ids",
        "runpod.io/ports",
        "runpod.io/container-disk-gb",
        "runpod.io/allowed-cuda-versions",
        "vast.ai/gpu-type",
        "vast.ai/gpu-fallbacks",
        "vast.ai/price-max",
        "vast.ai/region",
        "vast.ai/memory",
        "vast.ai/disk",
    ]
)


@FUZZ
@given(st.dictionaries(ANNOTATION_KEYS, TEXT, max_size=6), st.integers(0, 2**40), NUMBERS)
@example({"vast.ai/disk": "1" * 5000 + "GB"}, 1, 1.0)
@example({"runpod.io/ports": "²/tcp"}, 1, 1.0)
@example({"vast.ai/price-max": "NaN"}, 1, 1.0)
def test_annotations_are_options_or_an_invalid_annotation(
    annotations: dict[str, str], gpus: int, disk: float
) -> None:
    with contextlib.suppress(InvalidAnnotation, InvalidSpec):
        runpod_annotations(annotations)
    need = Requirements(gpu_count=gpus, disk_gb=abs(disk) or None, annotations=annotations)
    with contextlib.suppress(InvalidAnnotation, InvalidSpec):
        selection.select(need, selection.Policy(max_gpu_price=0.5, max_disk_gb=1000))
