"""Provider name → a running Provider: the only module that imports concrete providers.

When a cloud provider is chosen but no API key is configured, the embedded simulated cloud
(vk_trio/sim) is started in the daemon's nursery on loopback and the provider talks to it over
real HTTP, with a loud warning: nothing is rented, nothing is paid. That is what makes
``vk-trio run --provider runpod`` and ``vk-trio offers`` work on a laptop with no account. A
custom API URL without a key is refused instead (``check``): it means the user meant a real
endpoint, and silently simulating it would hide the mistake.

Which cloud, when ``--provider`` is not given (``resolve``): the clouds whose API key is
configured (environment, ``*_FILE``, systemd credential), in the order of ``config.CLOUDS``; a
cloud whose API URL was changed counts as meant too (so a URL without its key is refused, not
ignored); with neither, the embedded simulated RunPod. ``fake`` is only ever chosen by name,
and says so at start. The environment is read here (injectable, for tests and the demo) for
the API keys only; ``--registry-mirror`` names a pull-through mirror for the image registries
the providers read a Job image's default command from.

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

import msgspec
import trio

from vk_trio.config import CLOUDS, Config
from vk_trio.errors import ConfigError
from vk_trio.logs import get_logger, redact
from vk_trio.providers.base import Provider

if TYPE_CHECKING:
    from vk_trio.sim.runpod import RunPodSim
    from vk_trio.sim.vastai import VastSim

_log = get_logger("vk_trio.providers")

API_KEY_ENV = {"runpod": "RUNPOD_API_KEY", "vastai": "VAST_API_KEY"}
DEFAULT_URLS = {"runpod": "https://api.runpod.io", "vastai": "https://console.vast.ai"}
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


def resolve(config: Config, env: Mapping[str, str] | None = None) -> Config:
    """``config`` with its provider chosen when none was given (see the module docstring)."""
    return choose(config, env)[0]


def choose(config: Config, env: Mapping[str, str] | None = None) -> tuple[Config, str]:
    """``resolve``, and why, in words for the log ("" when the provider was given)."""
    if config.provider:
        return config, ""
    env = os.environ if env is None else env
    chosen = [cloud for cloud in CLOUDS if api_key(cloud, env) or _custom_url(config, cloud)]
    provider = ",".join(chosen) or CLOUDS[0]
    keys = [API_KEY_ENV[cloud] for cloud in chosen if api_key(cloud, env)]
    why = f"the keys configured: {', '.join(keys)}" if keys else "no API key is configured"
    return msgspec.structs.replace(config, provider=provider), f"{provider}, from {why}"


def _custom_url(config: Config, cloud: str) -> bool:
    url = config.runpod_api_url if cloud == "runpod" else config.vast_api_url
    return url.rstrip("/") != DEFAULT_URLS[cloud]


def simulated(config: Config, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The clouds of ``config`` that are not real: the fake, and each cloud that will run on
    its embedded simulator (no key, default URL). The Node's labels say so."""
    env = os.environ if env is None else env
    return tuple(
        name
        for name in config.providers
        if name not in API_KEY_ENV or (api_key(name, env) is None and not _custom_url(config, name))
    )


@asynccontextmanager
async def open_provider(
    config: Config,
    nursery: trio.Nursery,
    *,
    env: Mapping[str, str] | None = None,
    given: Provider | None = None,
) -> AsyncIterator[Provider]:
    """The provider ``config`` names (or ``given``), closed when the block ends: one cloud's,
    or a Router over several (or over one, when ``--max-node-price`` sets a budget)."""
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
    names = config.providers
    if "runpod" in names:
        runpod_endpoint(config, env)
    if "vastai" in names:
        vastai_endpoint(config, env)
    if config.datacenter_ids and "runpod" not in names:
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
    """A new provider for ``config``; its helpers (embedded simulators) run in ``nursery``."""
    from vk_trio.providers.router import Router

    config = resolve(config, env)
    check(config, env)
    clouds = [await build_one(name, config, nursery, env) for name in config.providers]
    if len(clouds) == 1 and config.max_node_price is None:
        return clouds[0]
    return Router(clouds, max_node_price=config.max_node_price)


async def strays(config: Config, nursery: trio.Nursery, env: Mapping[str, str]) -> list[Provider]:
    """Providers of the clouds ``config`` does not front but whose API key is configured, to
    look for instances of this node left there (never an embedded simulator)."""
    found = []
    for name in CLOUDS:
        if name not in config.providers and api_key(name, env) is not None:
            other = msgspec.structs.replace(config, provider=name, datacenter_ids=())
            found.append(await build_one(name, other, nursery, env))
    return found


async def build_one(
    name: str, config: Config, nursery: trio.Nursery, env: Mapping[str, str]
) -> Provider:
    """The provider of one cloud of ``config``."""
    if name == "fake":
        from vk_trio.providers.fake import FakeProvider

        state = Path(config.fake_state_file) if config.fake_state_file else None
        _log.warning(
            "FAKE PROVIDER: pods of node %s run on an in-process fake cloud, NOT on any GPU; "
            "nothing is rented. Choose a cloud with --provider runpod or vastai.",
            config.node_name,
        )
        return FakeProvider(config.node_name, state_file=state)
    if name == "runpod":
        return await _runpod(config, nursery, env)
    if name == "vastai":
        return await _vastai(config, nursery, env)
    raise ConfigError(f"--provider: {name!r} is not available in this build yet")


async def _runpod(config: Config, nursery: trio.Nursery, env: Mapping[str, str]) -> Provider:
    from vk_trio.providers.runpod import RunPodProvider

    mirror = config.registry_mirror.strip() or None
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

    mirror = config.registry_mirror.strip() or None
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
