"""One name per GPU model across clouds: the table that makes RunPod's and Vast.ai's offers
comparable, and ``vk-trio.io/gpu-types`` mean the same GPU on every cloud.

Each cloud spells a model its own way: RunPod's catalog id is ``NVIDIA GeForce RTX 4090``,
Vast.ai's ``gpu_name`` is ``RTX 4090``. Both become the model ``RTX 4090``. Memory variants are
different models (``A100 80GB``, ``A100 40GB``): Vast.ai gives both the same name (``A100
SXM4``) and tells them apart only by ``gpu_ram``, so a name that stands for several models is
resolved by the offer's memory per GPU (nearest, within ``MEMORY_TOLERANCE``). Form factors
that perform differently stay apart too (``H100 SXM``, ``H100 PCIe``, ``H100 NVL``).

The table is data: one row per model, its memory in GB, and its names on each cloud
(tests/providers/test_gpu_models.py checks that every GPU both simulators sell maps to a row).
A name in no row has no model: such offers are still rented, under their cloud's own name, but
no ``vk-trio.io/gpu-types`` entry selects them. Users may write a model by its name, by any
cloud's name for it, or with other spacing and case (``rtx4090``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MEMORY_TOLERANCE = 0.12  # cards report a little less than their nominal size (24564 MiB)


@dataclass(frozen=True, kw_only=True)
class GpuModel:
    name: str  # the canonical name users write in vk-trio.io/gpu-types
    memory_gb: float  # nominal, per GPU
    runpod: tuple[str, ...] = ()  # RunPod catalog ids (gpuTypeId)
    vastai: tuple[str, ...] = ()  # Vast.ai gpu_name values

    def names_on(self, cloud: str) -> tuple[str, ...]:
        """The model's names on ``cloud`` (empty: that cloud does not sell it)."""
        if cloud == "runpod":
            return self.runpod
        if cloud == "vastai":
            return self.vastai
        return (self.name,)  # other providers (the fake) use the canonical name


Names = str | tuple[str, ...]


def _m(name: str, memory: float, runpod: Names, vastai: Names) -> GpuModel:
    """One row: ``""`` for a cloud that does not sell the model."""

    def names(value: Names) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else value

    return GpuModel(
        name=name,
        memory_gb=memory,
        runpod=tuple(n for n in names(runpod) if n),
        vastai=tuple(n for n in names(vastai) if n),
    )


_A100_80 = ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB")


MODELS: tuple[GpuModel, ...] = (
    # consumer (GeForce)
    _m("RTX 3060", 12, "", "RTX 3060"),
    _m("RTX 3060 Ti", 8, "", "RTX 3060 Ti"),
    _m("RTX 3070", 8, "NVIDIA GeForce RTX 3070", "RTX 3070"),
    _m("RTX 3080", 10, "NVIDIA GeForce RTX 3080", "RTX 3080"),
    _m("RTX 3080 Ti", 12, "NVIDIA GeForce RTX 3080 Ti", "RTX 3080 Ti"),
    _m("RTX 3090", 24, "NVIDIA GeForce RTX 3090", "RTX 3090"),
    _m("RTX 3090 Ti", 24, "NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti"),
    _m("RTX 4060", 8, "", "RTX 4060"),
    _m("RTX 4060 Ti 8GB", 8, "", "RTX 4060 Ti"),
    _m("RTX 4060 Ti 16GB", 16, "", "RTX 4060 Ti"),
    _m("RTX 4070", 12, "NVIDIA GeForce RTX 4070", "RTX 4070"),
    _m("RTX 4070 Ti", 12, "NVIDIA GeForce RTX 4070 Ti", "RTX 4070 Ti"),
    _m("RTX 4080", 16, "NVIDIA GeForce RTX 4080", "RTX 4080"),
    _m("RTX 4080 SUPER", 16, "NVIDIA GeForce RTX 4080 SUPER", "RTX 4080S"),
    _m("RTX 4090", 24, ("NVIDIA GeForce RTX 4090", "NVIDIA RTX 4090"), "RTX 4090"),
    _m("RTX 5080", 16, "NVIDIA GeForce RTX 5080", "RTX 5080"),
    _m("RTX 5090", 32, "NVIDIA GeForce RTX 5090", "RTX 5090"),
    # workstation
    _m("RTX A4000", 16, "NVIDIA RTX A4000", "RTX A4000"),
    _m("RTX A4500", 20, "NVIDIA RTX A4500", "RTX A4500"),
    _m("RTX A5000", 24, "NVIDIA RTX A5000", "RTX A5000"),
    _m("RTX A6000", 48, "NVIDIA RTX A6000", "RTX A6000"),
    _m("RTX 2000 Ada", 16, "NVIDIA RTX 2000 Ada Generation", "RTX 2000Ada"),
    _m("RTX 4000 Ada", 20, "NVIDIA RTX 4000 Ada Generation", "RTX 4000Ada"),
    _m("RTX 5000 Ada", 32, "NVIDIA RTX 5000 Ada Generation", "RTX 5000Ada"),
    _m("RTX 6000 Ada", 48, "NVIDIA RTX 6000 Ada Generation", "RTX 6000Ada"),
    _m("RTX PRO 6000", 96, "NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX PRO 6000 S"),
    # data center
    _m("Tesla T4", 16, "", "Tesla T4"),
    _m("Tesla V100", 16, "Tesla V100-PCIE-16GB", "Tesla V100"),
    _m("A10", 24, "", "A10"),
    _m("A40", 48, "NVIDIA A40", "A40"),
    _m("L4", 24, "NVIDIA L4", "L4"),
    _m("L40", 48, "NVIDIA L40", "L40"),
    _m("L40S", 48, "NVIDIA L40S", "L40S"),
    _m("A100 40GB", 40, "NVIDIA A100-SXM4-40GB", ("A100 PCIE", "A100 SXM4")),
    _m("A100 80GB", 80, _A100_80, ("A100 PCIE", "A100 SXM4")),
    _m("H100 PCIe", 80, "NVIDIA H100 PCIe", "H100 PCIE"),
    _m("H100 SXM", 80, "NVIDIA H100 80GB HBM3", "H100 SXM"),
    _m("H100 NVL", 94, "NVIDIA H100 NVL", "H100 NVL"),
    _m("H200", 141, "NVIDIA H200", "H200"),
    _m("B200", 180, "NVIDIA B200", "B200"),
)


def _key(text: str) -> str:
    """Case, spaces, dashes and underscores do not matter: ``rtx-4090`` is ``RTX 4090``."""
    return re.sub(r"[\s_\-]+", "", text).lower()


_BY_NAME: dict[str, GpuModel] = {}
_BY_CLOUD_NAME: dict[tuple[str, str], tuple[GpuModel, ...]] = {}
for _model in MODELS:
    _BY_NAME[_key(_model.name)] = _model
    for _cloud in ("runpod", "vastai"):
        for _name in _model.names_on(_cloud):
            _BY_CLOUD_NAME[(_cloud, _name)] = (*_BY_CLOUD_NAME.get((_cloud, _name), ()), _model)


def lookup(text: str) -> GpuModel | None:
    """The model a user named: its canonical name, or a cloud's name that means one model."""
    found = _BY_NAME.get(_key(text))
    if found is not None:
        return found
    candidates = {
        model.name: model
        for (_, name), models in _BY_CLOUD_NAME.items()
        if _key(name) == _key(text)
        for model in models
    }
    return next(iter(candidates.values())) if len(candidates) == 1 else None


def model_of(cloud: str, gpu_type: str, memory_gb: float) -> GpuModel | None:
    """The model of an offer or instance: ``cloud``'s name for it, told apart by memory when
    the name stands for several models. None: not in the table."""
    candidates = _BY_CLOUD_NAME.get((cloud, gpu_type))
    if candidates is None:
        found = _BY_NAME.get(_key(gpu_type))
        candidates = (found,) if found is not None else ()
    if len(candidates) == 1:
        return candidates[0]
    fitting = [
        model
        for model in candidates
        if abs(memory_gb - model.memory_gb) <= MEMORY_TOLERANCE * model.memory_gb
    ]
    return min(fitting, key=lambda model: abs(memory_gb - model.memory_gb), default=None)


def known_names() -> str:
    return ", ".join(model.name for model in MODELS)
