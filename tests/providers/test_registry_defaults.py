"""What ``--provider`` means when it is not given: the clouds whose API key is configured (in the
environment, a ``*_FILE``, or a systemd credential), else the simulated RunPod; ``fake`` only by
name. The README's table "keys present → provider chosen" is this module's table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from vk_trio.cli import main
from vk_trio.config import load_config
from vk_trio.errors import ConfigError
from vk_trio.providers import registry


def chosen(env: Mapping[str, str], **flags: str) -> tuple[str, tuple[str, ...]]:
    """(the provider chosen, the clouds that will be simulated) for ``env`` and ``flags``."""
    config = registry.resolve(load_config(flags=flags, env=env), env)
    return config.provider, registry.simulated(config, env)


def key_file(tmp_path: Path, name: str, value: str = "s3cret") -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


# The README's table, row by row: keys present → provider chosen (and what is simulated).
def test_no_key_chooses_the_embedded_simulated_runpod() -> None:
    assert chosen({}) == ("runpod", ("runpod",))


def test_a_runpod_key_chooses_runpod_from_the_environment_a_file_or_a_credential(
    tmp_path: Path,
) -> None:
    assert chosen({"RUNPOD_API_KEY": "k"}) == ("runpod", ())
    assert chosen({"RUNPOD_API_KEY_FILE": key_file(tmp_path, "rp")}) == ("runpod", ())
    key_file(tmp_path, "runpod_api_key")
    assert chosen({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == ("runpod", ())


def test_only_a_vast_ai_key_chooses_vast_ai(tmp_path: Path) -> None:
    assert chosen({"VAST_API_KEY": "k"}) == ("vastai", ())
    assert chosen({"VAST_API_KEY_FILE": key_file(tmp_path, "va")}) == ("vastai", ())
    key_file(tmp_path, "vast_api_key")
    assert chosen({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == ("vastai", ())


def test_both_keys_choose_both_clouds_runpod_first(tmp_path: Path) -> None:
    assert chosen({"RUNPOD_API_KEY": "a", "VAST_API_KEY": "b"}) == ("runpod,vastai", ())
    key_file(tmp_path, "runpod_api_key")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "VAST_API_KEY_FILE": key_file(tmp_path, "v")}
    assert chosen(env) == ("runpod,vastai", ())


def test_fake_only_by_name_and_it_says_it_is_simulated() -> None:
    assert chosen({"RUNPOD_API_KEY": "k"}, provider="fake") == ("fake", ("fake",))
    assert chosen({"VK_PROVIDER": "fake"}) == ("fake", ("fake",))


def test_a_named_provider_wins_over_the_keys_and_a_missing_key_is_simulated() -> None:
    assert chosen({"RUNPOD_API_KEY": "k"}, provider="vastai") == ("vastai", ("vastai",))
    env = {"VAST_API_KEY": "k", "VK_PROVIDER": "runpod,vastai"}
    assert chosen(env) == ("runpod,vastai", ("runpod",))


def test_an_empty_key_file_counts_as_no_key(tmp_path: Path) -> None:
    assert chosen({"VAST_API_KEY_FILE": key_file(tmp_path, "empty", "  ")}) == (
        "runpod",
        ("runpod",),
    )


def test_a_cloud_url_without_its_key_is_chosen_and_then_refused_not_ignored() -> None:
    config = registry.resolve(
        load_config(flags={"vast_api_url": "https://vast.example"}, env={}), {}
    )
    assert config.provider == "vastai"
    with pytest.raises(ConfigError, match="VAST_API_KEY"):
        registry.check(config, {})


def test_run_without_provider_refuses_a_cloud_url_without_its_key_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("RUNPOD_API_KEY", "VAST_API_KEY", "VK_PROVIDER", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no kubeconfig: exit 2 on that, after the choice
    monkeypatch.setenv("VAST_API_URL", "https://vast.example")
    assert main(["run", "--health-server-address", "127.0.0.1:0"]) == 2
    assert "VAST_API_KEY" in capsys.readouterr().err  # vastai chosen for its URL, then refused
