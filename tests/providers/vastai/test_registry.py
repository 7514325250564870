"""registry.py's Vast.ai branch: the embedded simulated Vast.ai without a key (announced loudly),
the API URL with one, the seed's environment (NODE_NAME, VAST_API_KEY) as is, --max-gpu-price
per GPU, and the settings that can never work (a custom URL without a key, RunPod datacenter
ids) refused before anything starts."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.providers.vastai.controlplane_support import SEED_ANNOTATIONS
from tests.sim.vastai.support import API_KEY
from vk_trio.cli import main
from vk_trio.config import load_config
from vk_trio.errors import ConfigError
from vk_trio.logs import scrub
from vk_trio.providers import registry
from vk_trio.providers.base import Requirements
from vk_trio.providers.vastai import VastProvider
from vk_trio.sim.vastai import VastSim


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("vk_trio.providers")
    level = logger.level
    logger.setLevel(logging.WARNING)  # whatever an earlier test left on "vk_trio"
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VAST_API_KEY", "VAST_API_KEY_FILE", "CREDENTIALS_DIRECTORY", "DATACENTER_IDS"):
        monkeypatch.delenv(name, raising=False)


def test_a_custom_url_without_a_key_exits_2_naming_vast_api_key(
    no_key_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(flags={"provider": "vastai", "vast_api_url": "https://v.example"}, env={})
    with pytest.raises(ConfigError, match="VAST_API_KEY"):
        registry.check(config, {})
    registry.check(config, {"VAST_API_KEY": "v4st-key"})  # with a key it is fine
    argv = ["run", "--provider", "vastai", "--vast-api-url", "https://v.example"]
    assert main(argv) == 2  # before any connection to Kubernetes
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "VAST_API_KEY" in err and "--vast-api-url" in err


def test_runpod_datacenter_ids_are_refused_for_vast_ai_not_silently_ignored(
    no_key_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(flags={"provider": "vastai", "datacenter_ids": "EU-RO-1"}, env={})
    with pytest.raises(ConfigError, match=r"vast\.ai/region"):
        registry.check(config, {})
    assert main(["run", "--provider", "vastai", "--datacenter-ids", "EU-RO-1"]) == 2
    assert "--datacenter-ids" in capsys.readouterr().err


async def test_without_a_key_an_embedded_simulated_vast_ai_serves_the_provider_and_says_so(
    nursery: trio.Nursery, warnings: Records
) -> None:
    config = load_config(flags={"provider": "vastai", "node_name": "n1"}, env={})
    provider = await registry.build(config, nursery, {})
    try:
        assert isinstance(provider, VastProvider)
        assert provider.client.base_url.startswith("http://127.0.0.1:")
        offers = await provider.offers(Requirements(annotations=SEED_ANNOTATIONS))
        image = await provider.images.read("my-gpu-image:latest")  # the seeds' images
    finally:
        await provider.aclose()
    assert offers and all(o.gpu_type.startswith("RTX 3") for o in offers)
    assert image.cmd == ("python", "train.py")
    (message,) = warnings.messages
    assert "SIMULATED Vast.ai" in message and "No real GPU is rented" in message


async def test_the_seeds_environment_works_and_max_gpu_price_is_per_gpu(
    nursery: trio.Nursery, warnings: Records
) -> None:
    sim = VastSim(api_keys=[API_KEY])
    await nursery.start(sim.serve)
    env = {
        "NODE_NAME": "vast-gpu-node-python",
        "VAST_API_KEY": API_KEY,
        "VAST_API_URL": sim.url,
        "VK_PROVIDER": "vastai",
        "MAX_GPU_PRICE": "0.1",
    }
    config = load_config(env=env)
    provider = await registry.build(config, nursery, env)
    try:
        assert isinstance(provider, VastProvider)
        assert provider.node_name == "vast-gpu-node-python"
        provider.client.pacer.intervals["search"] = 0.0  # two searches, no need to wait 6 s
        one = await provider.offers(Requirements())
        await provider.offers(Requirements(gpu_count=2))
    finally:
        await provider.aclose()
    assert warnings.messages == []
    assert one and all(o.price_per_hour <= 0.1 for o in one)
    searches = [e for e in sim.journal if e.operation == "searchOffers"]
    assert [json.loads(e.body)["dph_total"] for e in searches] == [{"lte": 0.1}, {"lte": 0.2}]
    assert {e.auth for e in searches} == {"bearer"}


def test_the_key_from_env_file_or_credentials_directory_is_redacted(tmp_path: Path) -> None:
    assert registry.api_key("vastai", {"VAST_API_KEY": " vast_env_key_1 \n"}) == "vast_env_key_1"
    (tmp_path / "key").write_text("vast_file_key_2\n")
    from_file = registry.api_key("vastai", {"VAST_API_KEY_FILE": str(tmp_path / "key")})
    assert from_file == "vast_file_key_2"
    (tmp_path / "vast_api_key").write_text("vast_cred_key_3")
    from_credentials = registry.api_key("vastai", {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert from_credentials == "vast_cred_key_3"
    assert registry.api_key("vastai", {}) is None
    line = scrub("keys vast_env_key_1 vast_file_key_2 vast_cred_key_3")
    assert line == "keys [REDACTED] [REDACTED] [REDACTED]"
