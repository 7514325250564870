"""Provider name → a running Provider: the only module that imports concrete providers.

When a cloud provider is chosen but no API key is configured, the embedded simulated cloud
(vk_trio/sim) is started in the daemon's nursery on loopback and the provider talks to it over
real HTTP, with a loud warning: nothing is rented, nothing is paid. That is what makes
``vk-trio run --provider runpod`` and ``vk-trio offers`` work on a laptop with no account. A
custom API URL without a key is refused instead (``check``): it means the user meant a real
endpoint, and silently simulating it would hide the mistake.

Settings read from the environment here (the mapping is injectable, for tests and the demo):
the API key (``api_key``) and ``VK_TRIO_REGISTRY_MIRROR``, a pull-through mirror for the image
registries the RunPod and Vast.ai providers read a Job image's default command from.

How the node's settings mean the same on every cloud: ``--max-gpu-price`` is $/hour per GPU, so
a pod with N GPUs may cost N times it (RunPod's price per GPU; Vast.ai's ``dph_total`` of the
whole instance, disk included). ``--datacenter-ids`` names RunPod data centers; Vast.ai has
none (its hosts are single machines), so with ``--provider vastai`` it is refused rather than
ignored: a user who restricts placement, often for compliance, must not get it silently
dropped. The ``vast.ai/region`` annotation restricts Vast.ai pods to continents or countries.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from vk_trio.config import Config
from vk_trio.errors import ConfigError
from vk_trio.logs import get_logger, redact
from vk_trio.providers.base import Provider

if TYPE_CHECKING:
    from vk_trio.sim.runpod import RunPodSim
    from vk_trio.sim.vastai import VastSim

_log = get_logger("vk_trio.providers")

API_KEY_ENV = {"runpod": "RUNPOD_API_KEY", "vastai": "VAST_API_KEY"}
REGISTRY_MIRROR_ENV = "VK_TRIO_REGISTRY_MIRROR"
EMBEDDED_KEY = "vk-trio-embedded-simulator"  # the embedded simulator's own key, not a secret


def api_key(provider: str, env: Mapping[str, str]) -> str | None:
    """The provider's API key: ``RUNPOD_API_KEY`` (or VAST_API_KEY), else the file named by
    ``RUNPOD_API_KEY_FILE``, else systemd's LoadCredential file ``runpod_api_key``."""
    name = API_KEY_ENV.get(provider)
    if name is None:
        return None
    key = env.get(name, "").strip()
    candidates = [env.get(f"{name}_FILE", "")]
    if env.get("CREDENTIALS_DIRECTORY"):
        candidates.append(str(Path(env["CREDENTIALS_DIRECTORY"]) / name.lower()))
    for path in candidates:
        if key:
            break
        if path and Path(path).is_file():
            key = Path(path).read_text().strip()
    if key:
        redact(key)
    return key or None


@asynccontextmanager
async def open_provider(
    config: Config,
    nursery: trio.Nursery,
    *,
    env: Mapping[str, str] | None = None,
    given: Provider | None = None,
) -> AsyncIterator[Provider]:
    """The provider ``config`` names (or ``given``), closed when the block ends."""
    env = os.environ if env is None else env
    provider = given if given is not None else await build(config, nursery, env)
    try:
        yield provider
    finally:
        with trio.CancelScope(shield=True):
            await provider.aclose()


def check(config: Config, env: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError for provider settings that can never work, before anything starts."""
    env = os.environ if env is None else env
    if config.provider == "runpod":
        runpod_endpoint(config, env)
    elif config.provider == "vastai":
        vastai_endpoint(config, env)
        if config.datacenter_ids:
            raise ConfigError(
                "--datacenter-ids (DATACENTER_IDS) names RunPod data centers and Vast.ai has "
                "none: drop it for --provider vastai, and restrict where pods run with the "
                "vast.ai/region annotation (a continent or country codes) instead"
            )


def runpod_endpoint(config: Config, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(API URL, key) of the RunPod to talk to, or None for the embedded simulator."""
    from vk_trio.providers.runpod import DEFAULT_BASE_URL

    return _endpoint("runpod", config.runpod_api_url, DEFAULT_BASE_URL, "RunPod", env)


def vastai_endpoint(config: Config, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(API URL, key) of the Vast.ai to talk to, or None for the embedded simulator."""
    from vk_trio.providers.vastai import DEFAULT_BASE_URL

    return _endpoint("vastai", config.vast_api_url, DEFAULT_BASE_URL, "Vast.ai", env)


def _endpoint(
    provider: str, url: str, default: str, title: str, env: Mapping[str, str]
) -> tuple[str, str] | None:
    key = api_key(provider, env)
    url = url.rstrip("/")
    if key is not None:
        return url, key
    if url != default.rstrip("/"):
        name = API_KEY_ENV[provider]
        flag = {"runpod": "--runpod-api-url", "vastai": "--vast-api-url"}[provider]
        raise ConfigError(
            f"{flag} {url} is set but {name} is not: set {name} (or {name}_FILE) for that "
            f"endpoint, or drop the URL to use the embedded simulated {title}"
        )
    return None


async def build(config: Config, nursery: trio.Nursery, env: Mapping[str, str]) -> Provider:
    """A new provider for ``config``; its helpers (an embedded simulator) run in ``nursery``."""
    if config.provider == "fake":
        from vk_trio.providers.fake import FakeProvider

        state = Path(config.fake_state_file) if config.fake_state_file else None
        return FakeProvider(config.node_name, state_file=state)
    if config.provider == "runpod":
        return await _runpod(config, nursery, env)
    if config.provider == "vastai":
        return await _vastai(config, nursery, env)
    raise ConfigError(f"--provider: {config.provider!r} is not available in this build yet")


async def _runpod(config: Config, nursery: trio.Nursery, env: Mapping[str, str]) -> Provider:
    from vk_trio.providers.runpod import RunPodProvider

    mirror = env.get(REGISTRY_MIRROR_ENV, "").strip() or None
    endpoint = runpod_endpoint(config, env)
    if endpoint is None:
        sim = await start_embedded_runpod(nursery)
        endpoint = (sim.url, EMBEDDED_KEY)
        mirror = mirror or sim.registry_url
    url, key = endpoint
    return RunPodProvider(
        config.node_name,
        api_key=key,
        base_url=url,
        datacenter_ids=config.datacenter_ids,
        max_gpu_price=config.max_gpu_price,
        registry_mirror=mirror,
        max_disk_gb=config.max_disk_gb,
        registry_deny=config.registry_deny_cidrs,
    )


async def start_embedded_runpod(nursery: trio.Nursery) -> RunPodSim:
    """The simulated RunPod on loopback, with the seeds' example images scripted; says so."""
    from vk_trio.sim.runpod import RunPodSim, seed_workloads

    sim = RunPodSim(api_key=EMBEDDED_KEY)
    for image, workload in seed_workloads().items():
        sim.script_workload(image, workload)
    await nursery.start(sim.serve)
    _log.warning(
        "NO RUNPOD_API_KEY: using the EMBEDDED SIMULATED RunPod at %s. No real GPU is rented "
        "and nothing is paid; pods run scripted stand-ins of their images. Set RUNPOD_API_KEY "
        "to use RunPod.",
        sim.url,
    )
    return sim


async def _vastai(config: Config, nursery: trio.Nursery, env: Mapping[str, str]) -> Provider:
    from vk_trio.providers.vastai import VastProvider

    check(config, env)  # build() may be reached without the CLI's check (tests, embedding)
    mirror = env.get(REGISTRY_MIRROR_ENV, "").strip() or None
    endpoint = vastai_endpoint(config, env)
    loopback = endpoint is None
    if endpoint is None:
        sim = await start_embedded_vastai(nursery)
        endpoint = (sim.url, EMBEDDED_KEY)
        mirror = mirror or sim.registry_url
    url, key = endpoint
    return VastProvider(
        config.node_name,
        api_key=key,
        base_url=url,
        max_gpu_price=config.max_gpu_price,
        registry_mirror=mirror,
        trust_env=not loopback,  # a proxy from the environment must not see loopback calls
        max_disk_gb=config.max_disk_gb,
        registry_deny=config.registry_deny_cidrs,
    )


async def start_embedded_vastai(nursery: trio.Nursery) -> VastSim:
    """The simulated Vast.ai on loopback, on the wall clock, with the seeds' example images
    scripted; says so."""
    from vk_trio.sim.vastai import VastSim, seed_workloads, trio_clock

    sim = VastSim(api_keys=[EMBEDDED_KEY], clock=trio_clock(time.time() - trio.current_time()))
    for image, workload in seed_workloads().items():
        sim.script(image, workload)
    await nursery.start(sim.serve)
    _log.warning(
        "NO VAST_API_KEY: using the EMBEDDED SIMULATED Vast.ai at %s. No real GPU is rented "
        "and nothing is paid; pods run scripted stand-ins of their images. Set VAST_API_KEY "
        "to use Vast.ai.",
        sim.url,
    )
    return sim
