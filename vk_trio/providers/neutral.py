"""The provider-neutral pod annotations, and how they meet each cloud's own.

On a node that fronts several clouds a pod says what it needs once, for every cloud:

* ``vk-trio.io/gpu-types``: the acceptable GPU models (gpu_models.py names, or any cloud's name
  for one), comma-separated, the first preferred: among offers of the same price, the earlier
  model wins. Every cloud's offers are narrowed to these models.
* ``vk-trio.io/providers``: the clouds the pod may run on (a subset of the node's ``--provider``).
* ``vk-trio.io/max-price``: the most the whole instance may cost, in $/hour (disk included).
* ``vk-trio.io/gpu-memory``: at least this much memory per GPU, in GB (the issue's three are
  about where and how much; a memory floor that held on one cloud only would let a Job that
  needs 16 GB land on a 12 GB card elsewhere).

The seeds' annotations keep working unchanged and narrow their own cloud's offers only
(``runpod.io/*`` RunPod's, ``vast.ai/*`` Vast.ai's); each provider reads its own, as on a
single-cloud node. Where both say something, an offer must satisfy both: the GPU lists
intersect, the lowest price cap wins. ``narrowed`` hands a cloud the neutral wishes in its own
words (so its search asks for the right GPUs), and ``allows`` checks every offer afterwards
against the table of models, so a memory variant the cloud cannot search for (Vast.ai's ``A100
SXM4`` is 40 or 80 GB) is still told apart.

Everything here is pure: a bad value raises ``InvalidAnnotation`` (the pod waits for a fix),
a cloud list that excludes every cloud of this node raises ``InvalidSpec`` (it can never run
here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from vk_trio.providers import gpu_models
from vk_trio.providers.base import InvalidAnnotation, InvalidSpec, Offer, Requirements
from vk_trio.providers.gpu_models import GpuModel

PREFIX = "vk-trio.io/"
GPU_TYPES = PREFIX + "gpu-types"
PROVIDERS = PREFIX + "providers"
MAX_PRICE = PREFIX + "max-price"
GPU_MEMORY = PREFIX + "gpu-memory"
MEMORY_TOLERANCE = 0.98  # a 24 GB card reports 24564 MiB (23.99 GiB): it is a 24 GB card
KNOWN_CLOUDS = ("runpod", "vastai", "fake")
# What each cloud's own annotations are called, to hand it the neutral GPU list in its words.
RUNPOD_GPU_TYPE_IDS = "runpod.io/gpu-type-ids"
VAST_GPU_TYPE = "vast.ai/gpu-type"
VAST_GPU_FALLBACKS = "vast.ai/gpu-fallbacks"
_PRICE = re.compile(r"^\s*\$?\s*(\d+(?:\.\d+)?|\.\d+)\s*(?:/\s*h(?:r|our)?)?\s*$", re.I)


@dataclass(frozen=True, kw_only=True)
class Wishes:
    """What the neutral annotations ask for; empty/None means "not said"."""

    models: tuple[GpuModel, ...] = ()
    clouds: tuple[str, ...] = ()  # the node's clouds the pod may use, in the node's order
    max_price: float | None = None
    gpu_memory_gb: float | None = None

    def rank(self, offer: Offer) -> int:
        """The offer's place in the preference order of ``models`` (0 without a list)."""
        if not self.models:
            return 0
        model = model_of(offer)
        names = [m.name for m in self.models]
        return names.index(model.name) if model is not None and model.name in names else 0


def parse(annotations: Mapping[str, str], *, node_clouds: tuple[str, ...]) -> Wishes:
    """The neutral wishes of a pod whose node fronts ``node_clouds`` (in ``--provider`` order)."""
    return Wishes(
        models=_models(annotations.get(GPU_TYPES)),
        clouds=_clouds(annotations.get(PROVIDERS), node_clouds),
        max_price=_price(annotations.get(MAX_PRICE)),
        gpu_memory_gb=_memory(annotations.get(GPU_MEMORY)),
    )


def _items(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _models(value: str | None) -> tuple[GpuModel, ...]:
    if value is not None and not _items(value):
        raise InvalidAnnotation(f"{GPU_TYPES}: empty; name GPU models such as 'RTX 4090,L40S'")
    found: list[GpuModel] = []
    for item in _items(value):
        model = gpu_models.lookup(item)
        if model is None:
            raise InvalidAnnotation(
                f"{GPU_TYPES}: {item!r} is not a GPU model vk-trio knows (known: "
                f"{gpu_models.known_names()}); a cloud's own annotation names others"
            )
        if model not in found:
            found.append(model)
    return tuple(found)


def _clouds(value: str | None, node_clouds: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return node_clouds
    asked = [item.lower() for item in _items(value)]
    unknown = [item for item in asked if item not in KNOWN_CLOUDS]
    if unknown or not asked:
        shown = unknown[0] if unknown else value
        raise InvalidAnnotation(
            f"{PROVIDERS}: {shown!r} is not a cloud (runpod, vastai); this node fronts "
            f"{','.join(node_clouds)}"
        )
    allowed = tuple(cloud for cloud in node_clouds if cloud in asked)
    if not allowed:
        raise InvalidSpec(
            f"{PROVIDERS} {','.join(asked)} names none of this node's clouds "
            f"({','.join(node_clouds)}): the pod can never be placed here"
        )
    return allowed


def _price(value: str | None) -> float | None:
    if value is None:
        return None
    match = _PRICE.match(value)
    amount = float(match.group(1)) if match else math.nan
    if not 0 < amount < 10_000:
        raise InvalidAnnotation(
            f"{MAX_PRICE}: {value!r} is not a price in $/hour above 0 such as '0.50'"
        )
    return amount


def _memory(value: str | None) -> float | None:
    if value is None:
        return None
    text = value.strip().upper().removesuffix("GB").removesuffix("G").strip()
    try:
        amount = float(text)
    except ValueError:
        amount = math.nan
    if not 0 < amount <= 10_000:
        raise InvalidAnnotation(f"{GPU_MEMORY}: {value!r} is not a size in GB such as '24'")
    return amount


def narrowed(need: Requirements, wishes: Wishes, cloud: str) -> Requirements | None:
    """``need`` as ``cloud`` should search it: the neutral price cap folded in, and the neutral
    GPU list in the cloud's own annotation unless the pod already wrote one there (then both
    apply: ``allows`` intersects). None: the cloud sells none of the wished models."""
    caps = [c for c in (need.max_price_per_hour, wishes.max_price) if c is not None]
    cap = min(caps) if caps else None
    floors = [m for m in (need.gpu_memory_gb, wishes.gpu_memory_gb) if m is not None]
    memory = max(floors) if floors else None
    notes = dict(need.annotations)
    if wishes.models:
        names = list(dict.fromkeys(n for m in wishes.models for n in m.names_on(cloud)))
        if not names:
            return None
        if cloud == "runpod" and RUNPOD_GPU_TYPE_IDS not in notes:
            notes[RUNPOD_GPU_TYPE_IDS] = ",".join(names)
        elif cloud == "vastai" and VAST_GPU_TYPE not in notes and VAST_GPU_FALLBACKS not in notes:
            notes[VAST_GPU_TYPE] = names[0]
            if names[1:]:
                notes[VAST_GPU_FALLBACKS] = ",".join(names[1:])
    return replace(need, max_price_per_hour=cap, gpu_memory_gb=memory, annotations=notes)


def allows(offer: Offer, wishes: Wishes) -> bool:
    """Whether ``offer`` is one the neutral wishes accept (its cloud's own rules already held)."""
    if wishes.max_price is not None and offer.price_per_hour > wishes.max_price:
        return False
    floor = wishes.gpu_memory_gb
    if floor is not None and offer.gpu_memory_gb < floor * MEMORY_TOLERANCE:
        return False
    if not wishes.models:
        return True
    model = model_of(offer)
    return model is not None and model in wishes.models


def model_of(offer: Offer) -> GpuModel | None:
    return gpu_models.model_of(offer.provider, offer.gpu_type, offer.gpu_memory_gb)
