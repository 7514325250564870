"""The shipped .pyz: reproducible, complete, and a working node agent on its own.

Everything here runs ``vk-trio.pyz`` as a separate process with a PEX_ROOT of its own, the way
a host runs it, against the real control plane; nothing imports the source tree's agent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import trio

import build_zipapp
from tests.agent_harness import unique_node
from tests.controlplane.launcher import ControlPlane
from tests.packaging.agent_check import agent_flags, check_agent_runs_a_pod_and_stops, free_port
from vk_trio import __version__

PYENV = Path.home() / ".pyenv" / "versions"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_lock_matches_pyproject_and_the_constraints() -> None:
    assert build_zipapp.lock_problems() == []


def test_rebuilding_the_same_tree_gives_the_same_bytes(pyz: Path, tmp_path: Path) -> None:
    # two builds back to back (pex's cache is warm after `pyz`): the tree may be edited while
    # the session runs, so the session's own build is not the one to compare with
    first = build_zipapp.build(tmp_path / "first" / "vk-trio.pyz")
    second = build_zipapp.build(tmp_path / "second" / "vk-trio.pyz")
    assert sha256(first) == sha256(second)
    assert first.read_bytes() == second.read_bytes()


def test_the_pyz_carries_msgspec_for_every_target_platform(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        info = json.loads(archive.read("PEX-INFO"))
        names = archive.namelist()
    wheels = [name for name in info["distributions"] if name.startswith("msgspec-")]
    for version in build_zipapp.PYTHON_VERSIONS:
        for arch in build_zipapp.ARCHITECTURES:
            assert any(f"-cp{version}-cp{version}-" in w and arch in w for w in wheels), (
                version,
                arch,
            )
    assert info["venv"] is True
    assert "__main__.py" in names
    # only the package's sources, nothing else of the work tree
    sources = {n for n in names if n.endswith(".py") and not n.startswith((".", "__pex__"))}
    assert sources and all(n.startswith("vk_trio/") or n == "__main__.py" for n in sources)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_version_and_help_run_from_the_pyz(pyz: Path, pyz_env: dict[str, str]) -> None:
    version = subprocess.run(
        [str(pyz), "version"], env=pyz_env, capture_output=True, text=True, check=True, timeout=120
    )
    assert version.stdout.startswith(f"vk-trio {__version__} ")
    helped = subprocess.run(
        [str(pyz), "--help"], env=pyz_env, capture_output=True, text=True, check=True, timeout=60
    )
    assert "usage: vk-trio" in helped.stdout and "run" in helped.stdout
    bad = subprocess.run(
        [str(pyz), "run", "--nodename", "Not_Valid"],
        env=pyz_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "--nodename" in bad.stderr


def interpreters() -> dict[str, str]:
    """CPython 3.X -> a working interpreter, for each X the .pyz targets that this host has."""
    found: dict[str, str] = {}
    for version in build_zipapp.PYTHON_VERSIONS:
        dotted = f"{version[0]}.{version[1:]}"
        candidates = [shutil.which(f"python{dotted}") or ""]
        candidates += sorted(str(p) for p in PYENV.glob(f"{dotted}.*/bin/python{dotted}"))
        for candidate in filter(None, candidates):
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0 and probe.stdout.strip() == f"({version[0]}, {version[1:]})":
                found[dotted] = candidate
                break
    return found


def test_the_pyz_runs_on_every_targeted_cpython_this_host_has(pyz: Path, tmp_path: Path) -> None:
    found = interpreters()
    assert "3.11" in found  # the floor is always tested (the project's own Python)
    for dotted, python in found.items():
        env = {**os.environ, "PEX_ROOT": str(tmp_path / dotted)}
        ran = subprocess.run(
            [python, str(pyz), "version"], env=env, capture_output=True, text=True, check=False
        )
        assert ran.returncode == 0, ran.stderr
        assert f"(Python {dotted}." in ran.stdout, ran.stdout
        # `run` with a missing kubeconfig: gets past the config (msgspec's C extension), exits 2
        code = subprocess.run(
            [python, str(pyz), "run", "--kubeconfig", str(tmp_path / "none"), "--nodename", "n"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert code.returncode == 2 and "kubeconfig" in code.stderr, code.stderr


@pytest.mark.controlplane
async def test_the_pyz_runs_the_agent_a_pod_runs_and_sigterm_exits_0(
    pyz: Path,
    pyz_env: dict[str, str],
    controlplane: ControlPlane,
    namespace: str,
    tmp_path: Path,
) -> None:
    node, port = unique_node("pyz"), free_port()
    argv = [
        str(pyz),
        *agent_flags(
            node=node,
            port=port,
            kubeconfig=str(controlplane.kubeconfig),
            state_file=str(tmp_path / "fake-cloud.json"),
        ),
    ]
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            argv, env=pyz_env, stdout=log, stderr=log, cwd=str(tmp_path)
        )
    await check_agent_runs_a_pod_and_stops(
        process,
        controlplane=controlplane,
        node=node,
        port=port,
        namespace=namespace,
        log_path=log_path,
    )
