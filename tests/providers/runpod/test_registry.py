"""registry.py's RunPod branch: the embedded simulator without a key (announced loudly), the
real URL with one, a custom URL without a key refused, settings passed through, key redacted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.sim.runpod.support import API_KEY
from vk_trio.cli import main
from vk_trio.config import load_config
from vk_trio.errors import ConfigError
from vk_trio.logs import scrub
from vk_trio.providers import registry
from vk_trio.providers.base import Requirements
from vk_trio.providers.fake import FakeProvider
from vk_trio.providers.runpod import RunPodProvider
from vk_trio.sim.runpod import RunPodSim


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
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_custom_url_without_a_key_is_a_config_error_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(
        flags={"provider": "runpod", "runpod_api_url": "https://rp.example"}, env={}
    )
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        registry.check(config, {})
    registry.check(config, {"RUNPOD_API_KEY": "k3y-value"})  # with a key it is fine
    for name in ("RUNPOD_API_KEY", "RUNPOD_API_KEY_FILE", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    argv = ["run", "--provider", "runpod", "--runpod-api-url", "https://rp.example"]
    assert main(argv) == 2  # before any connection to Kubernetes
    assert "RUNPOD_API_KEY" in capsys.readouterr().err


async def test_without_a_key_an_embedded_simulator_serves_the_provider_and_says_so(
    nursery: trio.Nursery, warnings: Records
) -> None:
    config = load_config(flags={"provider": "runpod", "node_name": "n1"}, env={})
    provider = await registry.build(config, nursery, {})
    try:
        assert isinstance(provider, RunPodProvider)
        assert provider.client.base_url.startswith("http://127.0.0.1:")
        assert (await provider.offers(Requirements(gpu_memory_gb=16)))[0].price_per_hour > 0
        image = await provider.images.read("my-gpu-image:latest")  # the seeds' images
        assert image.cmd == ("python", "train.py")
    finally:
        await provider.aclose()
    (message,) = warnings.messages
    assert "SIMULATED RunPod" in message and "No real GPU is rented" in message


async def test_with_a_key_the_url_datacenters_and_price_cap_are_passed_through(
    nursery: trio.Nursery, warnings: Records
) -> None:
    sim = RunPodSim(api_key=API_KEY)
    await nursery.start(sim.serve)
    config = load_config(
        flags={
            "provider": "runpod",
            "runpod_api_url": sim.url,
            "datacenter_ids": "eu-ro-1",
            "max_gpu_price": "0.3",
        },
        env={},
    )
    provider = await registry.build(config, nursery, {"RUNPOD_API_KEY": API_KEY})
    try:
        assert isinstance(provider, RunPodProvider)
        offers = await provider.offers(Requirements())
    finally:
        await provider.aclose()
    assert warnings.messages == []
    assert offers and all(o.location == "EU-RO-1" and o.price_per_hour <= 0.3 for o in offers)
    assert sim.requests_for("listGpuTypes")[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_the_key_from_env_file_or_credentials_directory_is_redacted(tmp_path: Path) -> None:
    assert registry.api_key("runpod", {"RUNPOD_API_KEY": " rp_env_key_1 \n"}) == "rp_env_key_1"
    (tmp_path / "key").write_text("rp_file_key_2\n")
    assert registry.api_key("runpod", {"RUNPOD_API_KEY_FILE": str(tmp_path / "key")}) == (
        "rp_file_key_2"
    )
    (tmp_path / "runpod_api_key").write_text("rp_cred_key_3")
    assert registry.api_key("runpod", {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "rp_cred_key_3"
    assert registry.api_key("runpod", {}) is None
    line = scrub("keys rp_env_key_1 rp_file_key_2 rp_cred_key_3")
    assert line == "keys [REDACTED] [REDACTED] [REDACTED]"


async def test_the_fake_provider_is_still_built(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = load_config(
        flags={"provider": "fake", "fake_state_file": str(tmp_path / "f.json")}, env={}
    )
    provider = await registry.build(config, nursery, {})
    assert isinstance(provider, FakeProvider)
    await provider.aclose()
