"""The command line: version, help, and bad configuration exiting 2 with one line."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vk_trio", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_version_and_help_work() -> None:
    assert run_cli("version").stdout.startswith("vk-trio ")
    shown = run_cli("--help")
    assert shown.returncode == 0 and "run" in shown.stdout
    assert "--reconcile-interval" in run_cli("run", "--help").stdout


def test_a_bad_flag_value_exits_2_with_one_clear_line() -> None:
    result = run_cli("run", "--provider", "nope")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--provider" in lines[0] and "nope" in lines[0]


def test_missing_credentials_exit_2_with_one_clear_line(tmp_path: object) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run_cli("run", "--health-server-address", "127.0.0.1:0", env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "kubeconfig" in result.stderr.lower()
