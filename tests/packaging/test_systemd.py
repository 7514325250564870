"""systemd/vk-trio.service: valid for systemd, hardened (exposure <= 2.0), consistent with us.

``systemd-analyze verify`` checks the unit as systemd would load it, including that ExecStart=
names an executable: a copy of the unit points it at the .pyz built in this session.
``systemd-analyze security --offline=true`` scores the sandboxing without a running systemd.
These tests fail (never skip) when systemd-analyze is missing: CI installs Debian's
``systemd`` package for it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vk_trio.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "vk-trio.service"
ENV_EXAMPLE = ROOT / "systemd" / "vk-trio.env.example"
INSTALLED_PATH = "/usr/local/bin/vk-trio"
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze not found: install Debian's `systemd` package "
            "(apt-get install -y systemd); the systemd unit tests never skip"
        )
    return found


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture
def unit_for_pyz(pyz: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart= pointing at this session's .pyz instead of the install path."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_PATH} " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(f"ExecStart={INSTALLED_PATH} ", f"ExecStart={pyz} "))
    return copy


def test_systemd_analyze_verify_accepts_the_unit(unit_for_pyz: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", str(unit_for_pyz)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert UNIT.name not in result.stderr, result.stderr  # no warning about our unit either


def test_the_unit_is_hardened_to_an_exposure_of_at_most_2(unit_for_pyz: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit_for_pyz)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found, result.stdout + result.stderr
    exposure = float(found.group(1))
    assert exposure <= MAX_EXPOSURE, result.stdout


def test_the_stop_timeout_outlasts_the_agents_grace_period() -> None:
    settings = unit_settings()
    timeout = float(settings["TimeoutStopSec"][-1].removesuffix("s"))
    assert timeout >= Config().grace_period + 5
    assert settings["KillSignal"] == ["SIGTERM"]


def test_the_unit_keeps_secrets_in_credentials_and_pex_in_its_cache_directory() -> None:
    settings = unit_settings()
    assert "kubeconfig:/etc/vk-trio/kubeconfig" in settings["LoadCredential"]
    environment = settings["Environment"]
    assert "KUBECONFIG=%d/kubeconfig" in environment
    assert "PEX_ROOT=%C/vk-trio" in environment
    assert settings["CacheDirectory"] == ["vk-trio"]
    assert settings["DynamicUser"] == ["yes"]
    assert settings["Type"] == ["notify"]
    assert settings["Restart"] == ["on-failure"]


def test_the_environment_file_example_is_a_valid_configuration() -> None:
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key.isupper(), line
            env[key] = value
    config = load_config(env=env)
    assert "VK_PROVIDER" not in env and config.provider == ""  # chosen from the credentials
    assert config.node_name == env["KUBELET_NODE_NAME"]


def test_the_unit_keeps_state_raises_the_file_limit_and_denies_the_metadata_address() -> None:
    """Retained logs and the serving key live in StateDirectory= (the agent reads systemd's
    STATE_DIRECTORY); the descriptor limit covers the servers' connection caps; the cloud
    metadata service is unreachable from the agent."""
    settings = unit_settings()
    assert settings["StateDirectory"] == ["vk-trio"]
    assert load_config(env={"STATE_DIRECTORY": "/var/lib/vk-trio"}).state_dir == "/var/lib/vk-trio"
    assert int(settings["LimitNOFILE"][-1]) >= 2 * 4096 + 1024
    denied = " ".join(settings["IPAddressDeny"]).split()
    assert "169.254.0.0/16" in denied
    assert "fd00:ec2::254/128" in denied
