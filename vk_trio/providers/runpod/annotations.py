"""The ``runpod.io/*`` pod annotations: parsed once, strictly, with messages a user can act on.

Users steer placement with annotations (seed 001): ``required-gpu-memory`` (GB per GPU),
``cloud-type`` (SECURE, the default, or COMMUNITY), ``datacenter-ids`` (a comma list, limited by
the node's own allow-list), ``ports`` (``8080/tcp,9000/http``, overriding the auto-detection),
``templateId``, ``container-registry-auth-id``, plus ``container-disk-gb``, ``gpu-type-ids`` and
``allowed-cuda-versions``. A value we cannot use raises ``InvalidAnnotation`` naming the
annotation and what would be valid; the pod waits until it is fixed. Parsing never raises
anything else (a Hypothesis test holds us to it). Unknown ``runpod.io/*`` keys are ignored: the
agent writes some itself (``runpod.io/pod-id``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from vk_trio.providers.base import InvalidAnnotation, InvalidSpec, Port

PREFIX = "runpod.io/"
REQUIRED_GPU_MEMORY = PREFIX + "required-gpu-memory"
CLOUD_TYPE = PREFIX + "cloud-type"
DATACENTER_IDS = PREFIX + "datacenter-ids"
PORTS = PREFIX + "ports"
TEMPLATE_ID = PREFIX + "templateId"
REGISTRY_AUTH_ID = PREFIX + "container-registry-auth-id"
CONTAINER_DISK_GB = PREFIX + "container-disk-gb"
GPU_TYPE_IDS = PREFIX + "gpu-type-ids"
ALLOWED_CUDA_VERSIONS = PREFIX + "allowed-cuda-versions"

CLOUD_TYPES = ("SECURE", "COMMUNITY")
# Ports RunPod users expose through the HTTPS proxy; everything else is a TCP mapping (seed 001).
HTTP_PORTS = frozenset({80, 443, 8080, 8000, 3000, 5000, 8888, 9000})
MAX_DISK_GB = 10_000
DEFAULT_DISK_GB = 20  # container disk when neither the annotation nor the pod says
_DC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_CUDA = re.compile(r"^\d+\.\d+$")


@dataclass(frozen=True, kw_only=True)
class RunPodOptions:
    """What the annotations ask for; None/empty means "not said"."""

    required_gpu_memory_gb: float | None = None
    cloud_type: str = "SECURE"
    datacenter_ids: tuple[str, ...] = ()
    ports: tuple[Port, ...] | None = None
    template_id: str | None = None
    registry_auth_id: str | None = None
    container_disk_gb: int | None = None
    gpu_type_ids: tuple[str, ...] = ()
    allowed_cuda_versions: tuple[str, ...] = ()


def parse(annotations: Mapping[str, str]) -> RunPodOptions:
    """The options in ``annotations``; raises InvalidAnnotation for a value we cannot use."""

    def get(key: str) -> str | None:
        value = annotations.get(key)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    return RunPodOptions(
        required_gpu_memory_gb=_gpu_memory(get(REQUIRED_GPU_MEMORY)),
        cloud_type=_cloud_type(get(CLOUD_TYPE)),
        datacenter_ids=_datacenters(get(DATACENTER_IDS)),
        ports=_ports(get(PORTS)),
        template_id=get(TEMPLATE_ID),
        registry_auth_id=get(REGISTRY_AUTH_ID),
        container_disk_gb=_disk(get(CONTAINER_DISK_GB)),
        gpu_type_ids=_list(get(GPU_TYPE_IDS)),
        allowed_cuda_versions=_cuda(get(ALLOWED_CUDA_VERSIONS)),
    )


def _gpu_memory(value: str | None) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if number is None or number <= 0 or number > 10_000:
        raise InvalidAnnotation(
            f'{REQUIRED_GPU_MEMORY}: {value!r} is not a GPU memory size in GB (e.g. "24")'
        )
    return number


def _cloud_type(value: str | None) -> str:
    if value is None:
        return "SECURE"
    if value.upper() not in CLOUD_TYPES:
        raise InvalidAnnotation(f"{CLOUD_TYPE}: {value!r} is not SECURE or COMMUNITY")
    return value.upper()


def _datacenters(value: str | None) -> tuple[str, ...]:
    ids = _list(value)
    bad = [dc for dc in ids if not _DC_ID.match(dc)]
    if bad:
        raise InvalidAnnotation(
            f'{DATACENTER_IDS}: {bad[0]!r} is not a data center id (e.g. "EU-RO-1,US-TX-3")'
        )
    return tuple(dict.fromkeys(dc.upper() for dc in ids))


def _ports(value: str | None) -> tuple[Port, ...] | None:
    if value is None:
        return None
    ports: dict[int, Port] = {}
    for item in _list(value):
        number_text, _, protocol = item.partition("/")
        number = _int(number_text)
        protocol = protocol.strip().lower()
        if number is None or not 1 <= number <= 65535 or protocol not in ("", "tcp", "http"):
            raise InvalidAnnotation(
                f'{PORTS}: {item!r} is not PORT/tcp or PORT/http (e.g. "8080/http,22/tcp")'
            )
        if not protocol:
            protocol = "http" if number in HTTP_PORTS else "tcp"
        ports[number] = Port(number=number, protocol=protocol)
    return tuple(ports.values())


def _disk(value: str | None) -> int | None:
    if value is None:
        return None
    number = _int(value)
    if number is None or not 1 <= number <= MAX_DISK_GB:
        raise InvalidAnnotation(
            f"{CONTAINER_DISK_GB}: {value!r} is not a whole number of GB between 1 and "
            f"{MAX_DISK_GB}"
        )
    return number


def _cuda(value: str | None) -> tuple[str, ...]:
    versions = _list(value)
    bad = [v for v in versions if not _CUDA.match(v)]
    if bad:
        raise InvalidAnnotation(
            f'{ALLOWED_CUDA_VERSIONS}: {bad[0]!r} is not a MAJOR.MINOR version (e.g. "12.8")'
        )
    return versions


def _list(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _number(text: str) -> float | None:
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*", text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _int(text: str) -> int | None:
    text = text.strip()
    if not re.fullmatch(r"\d{1,9}", text):
        return None
    return int(text)


def container_disk_gb(options: RunPodOptions, need_disk_gb: float | None) -> int:
    """The container disk to rent: ``runpod.io/container-disk-gb``, else the pod's ephemeral
    storage request (whole GB, rounded up), else ``DEFAULT_DISK_GB``."""
    if options.container_disk_gb is not None:
        return options.container_disk_gb
    if need_disk_gb:
        return max(1, math.ceil(need_disk_gb))
    return DEFAULT_DISK_GB


def allowed_datacenters(node: tuple[str, ...], pod: tuple[str, ...]) -> tuple[str, ...]:
    """The data centers a pod may use: its annotation limited by the node's allow-list.

    No node list: the pod's (or any, when empty). No pod list: the node's. Both: the
    intersection, in the pod's order; an empty intersection is InvalidSpec, since the node
    will never be allowed to place this pod (seed 001: "the pod deployment will fail").
    """
    node_ids = tuple(dict.fromkeys(dc.upper() for dc in node))
    if not node_ids:
        return pod
    if not pod:
        return node_ids
    both = tuple(dc for dc in pod if dc in node_ids)
    if not both:
        raise InvalidSpec(
            f"{DATACENTER_IDS} {', '.join(pod)} allows none of this node's data centers "
            f"({', '.join(node_ids)}): the pod can never be placed here"
        )
    return both
