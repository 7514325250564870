"""``vk-trio offers``: what a GPU pod could rent right now, cheapest first, before you submit it.

A pod that waits for capacity or costs more than expected is found out late, at the cloud's
console or on the bill. This command asks the provider the same question the node agent asks
when it places a pod (``Provider.offers`` with the pod's requirements and the node's settings:
``--max-gpu-price``, ``--datacenter-ids`` and the API URL and key, from flags, environment or
config file) and prints the answer as a table. Without an API key it asks the embedded simulated
cloud, and says so on stderr, so the table's prices are examples, not quotes.

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
NO_OFFER = 1  # exit code when nothing matches (the values were fine)
COLUMNS = ("GPU TYPE", "MEMORY", "GPUS", "$/H", "DATACENTER", "CLOUD", "STOCK")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--provider", default="runpod", help="cloud provider (default: runpod)")
    add("--gpu-memory", metavar="GB", help="at least this much memory per GPU")
    add("--gpus", metavar="N", default="1", help="GPUs per instance (default: 1)")
    add("--max-price", metavar="USD", help="highest $/hour for the whole instance")
    add("--datacenter-ids", metavar="IDS", help="comma-separated allowed datacenters")
    add("--cloud-type", metavar="TYPE", help="SECURE (default) or COMMUNITY (RunPod)")
    add("--runpod-api-url", metavar="URL", help="RunPod API base URL [env RUNPOD_API_URL]")
    add("--config", metavar="FILE", help="TOML config file of the node (flags and env win)")


def main(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    config, need = settings(args, env)  # ConfigError: exit 2, before anything is imported

    import trio

    from vk_trio.logs import setup_logging
    from vk_trio.providers.registry import API_KEY_ENV, api_key, check

    check(config, env)
    setup_logging("error")  # our own stderr line replaces the daemon's simulator warning
    key_name = API_KEY_ENV.get(config.provider)
    if key_name is not None and api_key(config.provider, env) is None:
        print(
            f"vk-trio: no {key_name} set: these offers come from the embedded SIMULATED "
            f"{config.provider} (example prices and stock), not from the real one",
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
    print(table(offers))
    return 0


def settings(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Config, Requirements]:
    """The node's config and the pod's requirements from the flags; ConfigError if bad."""
    from vk_trio.config import load_config
    from vk_trio.providers.base import Requirements

    gpus = _number(args.gpus, "--gpus", integer=True)
    memory = _number(args.gpu_memory, "--gpu-memory")
    price = _number(args.max_price, "--max-price")
    annotations: dict[str, str] = {}
    if args.cloud_type is not None:
        cloud = args.cloud_type.strip().upper()
        if cloud not in CLOUD_TYPES:
            raise ConfigError(f"--cloud-type: {args.cloud_type!r} is not SECURE or COMMUNITY")
        annotations["runpod.io/cloud-type"] = cloud
    flags: dict[str, Any] = {"provider": args.provider, "runpod_api_url": args.runpod_api_url}
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
        max_price_per_hour=price,
        annotations=annotations,
    )
    return config, need


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


def table(offers: Sequence[Offer]) -> str:
    """Aligned columns, one offer a line, in the order given (the provider's: cheapest first)."""
    rows = [COLUMNS] + [
        (
            offer.gpu_type,
            f"{offer.gpu_memory_gb:g} GB",
            str(offer.gpu_count),
            f"{offer.price_per_hour:.3f}",
            offer.location or "any",
            offer.cloud_type or "-",
            offer.details.get("availability", "-"),
        )
        for offer in offers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
