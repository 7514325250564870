"""Provider name → a running Provider: the only module that imports concrete providers.

When a cloud provider is chosen but no API key is configured, the embedded simulated cloud
(vk_trio/sim) is started in the daemon's nursery on loopback and the provider talks to it over
real HTTP, with a loud warning: nothing is rented, nothing is paid. That is what makes
``vk-trio run --provider runpod`` and ``vk-trio offers`` work on a laptop with no account. A
custom API URL without a key is refused instead (``check``): it means the user meant a real
endpoint, and silently simulating it would hide the mistake.

Settings read from the environment here (the mapping is injectable, for tests and the demo):
the API key (``api_key``) and ``VK_TRIO_REGISTRY_MIRROR``, a pull-through mirror for the image
registries the RunPod provider reads a Job image's default command from.
"""

from __future__ import annotations

import os
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


def runpod_endpoint(config: Config, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(API URL, key) of the RunPod to talk to, or None for the embedded simulator."""
    from vk_trio.providers.runpod import DEFAULT_BASE_URL

    key = api_key("runpod", env)
    url = config.runpod_api_url.rstrip("/")
    if key is not None:
        return url, key
    if url != DEFAULT_BASE_URL:
        raise ConfigError(
            f"--runpod-api-url {url} is set but RUNPOD_API_KEY is not: set RUNPOD_API_KEY "
            "(or RUNPOD_API_KEY_FILE) for that endpoint, or drop the URL to use the embedded "
            "simulated RunPod"
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
    # vastai: a `_vastai(config, nursery, env)` beside `_runpod`, with its key and simulator.
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
