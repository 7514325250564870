"""Provider name → a running Provider: the only module that imports concrete providers.

When a cloud provider is chosen but no API key is configured, the embedded simulated cloud
(vk_trio/sim) is started in the daemon's nursery on loopback and the provider talks to it over
real HTTP, with a loud warning: nothing is rented, nothing is paid. That is what makes
``vk-trio run --provider runpod`` and ``vk-trio demo`` work on a laptop with no account.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from vk_trio.config import Config
from vk_trio.errors import ConfigError
from vk_trio.logs import get_logger, redact
from vk_trio.providers.base import Provider

_log = get_logger("vk_trio.providers")

API_KEY_ENV = {"runpod": "RUNPOD_API_KEY", "vastai": "VAST_API_KEY"}


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
    provider = given if given is not None else await _build(config, nursery, env)
    try:
        yield provider
    finally:
        with trio.CancelScope(shield=True):
            await provider.aclose()


async def _build(config: Config, nursery: trio.Nursery, env: Mapping[str, str]) -> Provider:
    if config.provider == "fake":
        from vk_trio.providers.fake import FakeProvider

        state = Path(config.fake_state_file) if config.fake_state_file else None
        return FakeProvider(config.node_name, state_file=state)
    raise ConfigError(f"--provider: {config.provider!r} is not available in this build yet")
