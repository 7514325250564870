"""The RunPod REST v2 bodies we send and read, as msgspec Structs.

Requests carry only the fields the v2 contract defines (``CreatePodRequest`` is
``unevaluatedProperties: false``: one stray v1 key is a 422), and omit what we leave to RunPod's
defaults. Responses are decoded leniently: fields we do not use are ignored and missing optional
ones get defaults, so a new field in RunPod's answers never breaks the node.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class GpuRequest(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    id: str
    count: int = 1
    allowed_cuda_versions: list[str] | None = None


class CreatePodRequest(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    name: str
    image: str | None = None
    template_id: str | None = None
    args: str | None = None
    disk: int | None = None
    env: dict[str, str] | None = None
    ports: list[str] | None = None
    registry: str | None = None
    cloud: str | None = None
    data_center_ids: list[str] | None = None
    gpu: GpuRequest | None = None


class CreateRegistryRequest(msgspec.Struct, kw_only=True):
    name: str
    username: str
    password: str


class RuntimePort(msgspec.Struct, kw_only=True):
    private: int | None = None
    public: int | None = None
    type: str = ""
    ip: str | None = None


class Utilization(msgspec.Struct, kw_only=True):
    util: float | None = None  # percent, 0-100


class GpuUtilization(msgspec.Struct, kw_only=True, rename="camel"):
    util: float | None = None  # percent busy
    memory_util: float | None = None  # percent of the GPU's memory in use


class PodRuntime(msgspec.Struct, kw_only=True):
    uptime: int | None = None
    ports: list[RuntimePort] | None = None
    gpus: list[GpuUtilization] | None = None
    cpu: Utilization | None = None
    memory: Utilization | None = None


class PodGpu(msgspec.Struct, kw_only=True):
    id: str = ""
    count: int = 1


class Pod(msgspec.Struct, kw_only=True, rename="camel"):
    id: str
    name: str = ""
    status: str = ""
    image: str = ""
    args: str = ""
    env: dict[str, str] | None = None
    ports: list[str] | None = None
    gpu: PodGpu | None = None
    cloud: str = ""
    data_center_id: str | None = None
    cost: float = 0.0
    registry: str | None = None  # the registry credential id the pod pulls with
    runtime: PodRuntime | None = None
    created_at: str | None = None
    started_at: str | None = None


class PodList(msgspec.Struct, kw_only=True):
    pods: list[Pod]


class RawPodList(msgspec.Struct, kw_only=True):
    """The list with each pod left undecoded, so one bad pod cannot spoil the others."""

    pods: list[msgspec.Raw]


class PodStub(msgspec.Struct, kw_only=True):
    """What can still be read of a pod whose full answer cannot: its id and name."""

    id: str
    name: str = ""
    status: str = ""


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem body (``application/problem+json``)."""

    title: str = ""
    status: int = 0
    detail: str = ""
    errors: list[str] | None = None


Price = Annotated[float, msgspec.Meta(ge=0, le=1e6)]  # $/h; a negative or huge one is no offer
Count = Annotated[int, msgspec.Meta(ge=0, le=1024)]


class GpuPrice(msgspec.Struct, kw_only=True):
    secure: Price = 0.0
    community: Price = 0.0


class GpuMaxCount(msgspec.Struct, kw_only=True):
    secure: Count = 0
    community: Count = 0


class DataCenterAvailability(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""
    availability: str = "NONE"


class GpuType(msgspec.Struct, kw_only=True, rename="camel"):
    id: str
    name: str = ""
    memory: Annotated[int, msgspec.Meta(ge=0, le=2**20)] = 0
    secure: bool = False
    community: bool = False
    price: GpuPrice = msgspec.field(default_factory=GpuPrice)
    max_count: GpuMaxCount = msgspec.field(default_factory=GpuMaxCount)
    availability: str | None = None
    data_centers: list[DataCenterAvailability] | None = None


class GpuTypeList(msgspec.Struct, kw_only=True):
    gpus: list[GpuType]


class DataCenter(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""


class DataCenterList(msgspec.Struct, kw_only=True, rename="camel"):
    data_centers: list[DataCenter]


class RawGpuTypeList(msgspec.Struct, kw_only=True):
    """The catalog with each GPU type left undecoded: one odd entry is skipped, not fatal."""

    gpus: list[msgspec.Raw]


class Registry(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""


class RegistryList(msgspec.Struct, kw_only=True):
    registries: list[Registry]


class LogEvent(msgspec.Struct, kw_only=True):
    """The JSON ``data`` of one SSE event of ``GET /v2/pods/{id}/logs``."""

    ts: str = ""
    source: str = ""
    line: str = ""
