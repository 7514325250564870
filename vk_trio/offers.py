"""``vk-trio offers``: what a GPU pod could rent right now, cheapest first, before you submit it.

A pod that waits for capacity or costs more than expected is found out late, at the cloud's
console or on the bill. This command asks the provider the same question the node agent asks
when it places a pod (``Provider.offers`` with the pod's requirements and the node's settings:
``--max-gpu-price``, ``--datacenter-ids`` and the API URL and key, from flags, environment or
config file) and prints the answer as a table. Without an API key it asks the embedded simulated
cloud and says so on stderr, so the table's prices are examples, not quotes.

The same flags work for every provider where the clouds share the idea: ``--gpu-type`` (a comma
list; RunPod's ``runpod.io/gpu-type-ids``, Vast.ai's ``vast.ai/gpu-type`` then
``vast.ai/gpu-fallbacks``, and on several clouds the neutral ``vk-trio.io/gpu-types`` models),
``--gpu-memory``, ``--gpus``, ``--disk``, ``--max-price`` (the whole instance, per hour). Where
they do not, a flag belongs to one provider and is refused when that provider is not asked,
rather than ignored: ``--region`` (a continent or country codes) is Vast.ai's,
``--datacenter-ids`` and ``--cloud-type`` are RunPod's.

``--provider runpod,vastai`` asks both (as a node that fronts both would) and prints one merged
table, cheapest first, with a CLOUD column and each GPU's model name (providers/gpu_models.py).
Without ``--provider`` the clouds are the node's: those whose API key is configured, else the
simulated RunPod.

Values are checked here, before any network call: a bad one exits 2 with one line naming the
flag (argparse's own errors would print the usage block too, so flags are parsed as strings).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vk_trio.errors import ConfigError

if TYPE_CHECKING:
    from vk_trio.config import Config
    from vk_trio.providers.base import Offer, Requirements

CLOUD_TYPES = ("SECURE", "COMMUNITY")
_DATACENTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_GPU_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()/+-]*$")
NO_OFFER = 1  # exit code when nothing matches (the values were fine)
COLUMNS = ("GPU TYPE", "MEMORY", "GPUS", "$/H", "DATACENTER", "CLOUD", "STOCK")
MERGED_COLUMNS = ("CLOUD", "GPU", "MEMORY", "GPUS", "$/H", "WHERE", "KIND", "DETAIL")
VAST_COLUMNS = ("GPU TYPE", "MEMORY", "GPUS", "$/H", "LOCATION", "HOSTING", "RELIABILITY", "OFFER")
RUNPOD_ONLY = {"datacenter_ids": "--datacenter-ids", "cloud_type": "--cloud-type"}
VASTAI_ONLY = {"region": "--region"}
TITLES = {"runpod": "RunPod", "vastai": "Vast.ai"}
HINTS = {
    "--region": "; for RunPod use --datacenter-ids",
    "--datacenter-ids": "; for Vast.ai use --region (a continent or country codes)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--provider",
        help="runpod, vastai, or both (runpod,vastai: one merged table); default: the clouds "
        "whose API key is set, else runpod [env VK_PROVIDER]",
    )
    add("--gpu-type", metavar="NAMES", help="comma-separated GPU types, preferred first")
    add("--gpu-memory", metavar="GB", help="at least this much memory per GPU")
    add("--gpus", metavar="N", default="1", help="GPUs per instance (default: 1)")
    add("--disk", metavar="GB", help="disk to rent (Vast.ai prices offers at this size)")
    add("--max-price", metavar="USD", help="highest $/hour for the whole instance")
    add("--region", metavar="REGION", help="continent or country codes (Vast.ai)")
    add("--datacenter-ids", metavar="IDS", help="comma-separated allowed datacenters (RunPod)")
    add("--cloud-type", metavar="TYPE", help="SECURE (default) or COMMUNITY (RunPod)")
    add("--runpod-api-url", metavar="URL", help="RunPod API base URL [env RUNPOD_API_URL]")
    add("--vast-api-url", metavar="URL", help="Vast.ai API base URL [env VAST_API_URL]")
    add("--config", metavar="FILE", help="TOML config file of the node (flags and env win)")


def main(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    config, need = settings(args, env)  # ConfigError: exit 2, before anything is imported

    import trio

    from vk_trio.logs import setup_logging
    from vk_trio.providers.registry import check, simulated

    check(config, env)
    setup_logging("error")  # our own stderr line replaces the daemon's simulator warning
    for name in simulated(config, env):
        print(
            f"vk-trio: no {API_KEYS.get(name, name)} set: these {TITLES.get(name, name)} "
            f"offers come from the embedded SIMULATED {TITLES.get(name, name)} (example "
            "prices and stock), not from the real one",
            file=sys.stderr,
        )
    offers, error = trio.run(_ask, config, need, env)
    if error is not None:
        print(f"vk-trio: {config.provider}: {error}", file=sys.stderr)
        return NO_OFFER
    if not offers:
        from vk_trio.providers.placement import describe

        print(f"vk-trio: no offer right now for {describe(need)}", file=sys.stderr)
        return NO_OFFER
    print(table(offers, config.provider))
    return 0


API_KEYS = {"runpod": "RUNPOD_API_KEY", "vastai": "VAST_API_KEY"}


def settings(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Config, Requirements]:
    """The node's config and the pod's requirements from the flags; ConfigError if bad."""
    from vk_trio.config import load_config
    from vk_trio.providers.base import Requirements
    from vk_trio.providers.registry import resolve

    gpus = _number(args.gpus, "--gpus", integer=True)
    memory = _number(args.gpu_memory, "--gpu-memory")
    price = _number(args.max_price, "--max-price")
    disk = _number(args.disk, "--disk")
    flags: dict[str, Any] = {
        "provider": args.provider,
        "runpod_api_url": args.runpod_api_url,
        "vast_api_url": args.vast_api_url,
    }
    clouds = resolve(load_config(flags=flags, env=env, config_file=args.config), env).providers
    flags["provider"] = provider = ",".join(clouds)
    _one_provider(args, clouds)
    annotations: dict[str, str] = {}
    if args.cloud_type is not None:
        cloud = args.cloud_type.strip().upper()
        if cloud not in CLOUD_TYPES:
            raise ConfigError(f"--cloud-type: {args.cloud_type!r} is not SECURE or COMMUNITY")
        annotations["runpod.io/cloud-type"] = cloud
    if args.gpu_type is not None:
        annotations |= _gpu_types(args.gpu_type, provider)
    if args.region is not None:
        annotations["vast.ai/region"] = _region(args.region)
    if args.datacenter_ids is not None:
        ids = [dc.strip() for dc in args.datacenter_ids.split(",") if dc.strip()]
        bad = [dc for dc in ids if not _DATACENTER.match(dc)]
        if bad or not ids:
            shown = bad[0] if bad else args.datacenter_ids
            raise ConfigError(f"--datacenter-ids: {shown!r} is not a datacenter id (EU-RO-1)")
        flags["datacenter_ids"] = ",".join(dc.upper() for dc in ids)
    config = load_config(flags=flags, env=env, config_file=args.config)
    need = Requirements(
        gpu_count=int(gpus or 1),
        gpu_memory_gb=memory,
        disk_gb=disk,
        max_price_per_hour=price,
        annotations=annotations,
    )
    return config, need


def _one_provider(args: argparse.Namespace, clouds: tuple[str, ...]) -> None:
    """Refuse a flag of a cloud that is not asked: ignoring a filter would list offers it
    excludes. With several clouds, each flag narrows its own cloud's offers."""
    for owner, only in (("runpod", RUNPOD_ONLY), ("vastai", VASTAI_ONLY)):
        for field, flag in only.items():
            if owner not in clouds and getattr(args, field) is not None:
                raise ConfigError(f"{flag}: only for --provider {owner}{HINTS.get(flag, '')}")


def _gpu_types(text: str, provider: str) -> dict[str, str]:
    """``--gpu-type`` as the provider's annotations (the first name is preferred)."""
    names = [" ".join(name.split()) for name in text.split(",") if name.strip()]
    bad = [name for name in names if not _GPU_NAME.match(name)]
    if bad or not names:
        shown = bad[0] if bad else text
        raise ConfigError(f"--gpu-type: {shown!r} is not a GPU type such as 'RTX 4090'")
    if "," in provider:
        from vk_trio.providers.base import InvalidAnnotation
        from vk_trio.providers.neutral import GPU_TYPES
        from vk_trio.providers.neutral import parse as neutral

        try:
            neutral({GPU_TYPES: ",".join(names)}, node_clouds=())
        except InvalidAnnotation as exc:
            raise ConfigError(f"--gpu-type: {exc.message.split(': ', 1)[1]}") from None
        return {GPU_TYPES: ",".join(names)}
    if provider == "vastai":
        found = {"vast.ai/gpu-type": names[0]}
        if names[1:]:
            found["vast.ai/gpu-fallbacks"] = ",".join(names[1:])
        return found
    return {"runpod.io/gpu-type-ids": ",".join(names)}


def _region(text: str) -> str:
    from vk_trio.providers.vastai.regions import RegionError, countries

    try:
        countries(text)
    except RegionError as exc:
        raise ConfigError(f"--region: {exc}") from None
    return text


def _number(text: str | None, flag: str, *, integer: bool = False) -> float | None:
    if text is None:
        return None
    kind = "a whole number" if integer else "a number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not {kind}") from None
    if not math.isfinite(value) or value <= 0 or value > 10_000:
        raise ConfigError(f"{flag}: {text!r} must be {kind} above 0 (and sensible)")
    return float(value)


async def _ask(
    config: Config, need: Requirements, env: Mapping[str, str]
) -> tuple[list[Offer], str | None]:
    """The provider's offers, or the one-line reason it could not answer."""
    import trio

    from vk_trio.providers.base import CloudError
    from vk_trio.providers.registry import open_provider

    offers: list[Offer] = []
    error: str | None = None
    async with trio.open_nursery() as nursery:
        async with open_provider(config, nursery, env=env) as provider:
            try:
                offers = await provider.offers(need)
            except CloudError as exc:
                error = f"{exc.reason}: {exc.message}"
        nursery.cancel_scope.cancel()  # the embedded simulator, if any
    return offers, error


def table(offers: Sequence[Offer], provider: str = "runpod") -> str:
    """Aligned columns, one offer a line, in the order given (the provider's: cheapest first)."""
    header, cells = (VAST_COLUMNS, _vast_cells) if provider == "vastai" else (COLUMNS, _cells)
    if "," in provider:
        header, cells = MERGED_COLUMNS, _merged_cells
    rows: list[Sequence[str]] = [header, *(cells(offer) for offer in offers)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _cells(offer: Offer) -> tuple[str, ...]:
    return (
        offer.gpu_type,
        f"{offer.gpu_memory_gb:g} GB",
        str(offer.gpu_count),
        f"{offer.price_per_hour:.3f}",
        offer.location or "any",
        offer.cloud_type or "-",
        offer.details.get("availability", "-"),
    )


def _merged_cells(offer: Offer) -> tuple[str, ...]:
    """The cloud, the GPU's model (its cloud's own name when the table has none), where it
    runs, the cloud's kind of host (RunPod's cloud type, Vast.ai's hosting), and RunPod's stock
    level or Vast.ai's offer id (what renting it by hand takes)."""
    stock = offer.details.get("availability")
    return (
        TITLES.get(offer.provider, offer.provider),
        offer.details.get("model") or offer.gpu_type,
        *_cells(offer)[1:4],
        offer.location or "any",
        offer.cloud_type or "-",
        f"stock {stock}" if stock else f"offer {offer.offer_id}",
    )


def _vast_cells(offer: Offer) -> tuple[str, ...]:
    """Where the host is, its hosting type and reliability, and the offer id to rent."""
    return (
        *_cells(offer)[:4],
        offer.location or "-",
        offer.cloud_type or "-",
        offer.details.get("reliability2", "-"),
        offer.offer_id,
    )
