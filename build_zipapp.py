"""Build ``dist/vk-trio.pyz``: the agent in one file (Linux x86_64 + aarch64, CPython 3.11-3.14).

Why pex (measured in the research notes): the stdlib zipapp cannot load msgspec's C extension;
pex can, puts the wheels of every target platform into one file, and with ``--venv --sh-boot``
a warm start execs a cached venv's interpreter directly (as fast as a plain venv).

Inputs, all in the repository:

* ``requirements/pex.lock``: a universal pex lock (hashes of every artifact) of the runtime
  dependencies in pyproject.toml, pinned to ``requirements/constraints.txt``.
  ``python build_zipapp.py lock`` regenerates it; ``python build_zipapp.py check-lock`` says
  whether it still matches pyproject.toml and the constraints.
* the ``*.py`` files under ``vk_trio/`` (staged into a temporary directory, so nothing else of
  the work tree, e.g. caches or build leftovers, can leak into the file).

The same inputs give the same bytes: pex writes zip entries in a fixed order with fixed
timestamps. ``--compile`` is deliberately absent (pex's compiled bootstrap embeds timestamps);
the venv that pex builds on first run is compiled by the interpreter then, and pex runs it with
``-I``, so PYTHONDONTWRITEBYTECODE does not slow warm starts.

Usage::

    python build_zipapp.py [build] [-o dist/vk-trio.pyz]
    python build_zipapp.py lock
    python build_zipapp.py check-lock
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LOCK = ROOT / "requirements" / "pex.lock"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
DEFAULT_OUTPUT = ROOT / "dist" / "vk-trio.pyz"
PACKAGE = "vk_trio"
ENTRY_POINT = "vk_trio.cli:main"

# pex's own pip; "latest" asked for a pip the index did not serve (research notes, section 3).
PIP_VERSION = "25.0"
# msgspec's wheels are CPython-ABI specific: one wheel per (version, architecture) goes in.
PYTHON_VERSIONS = ("311", "312", "313", "314")
ARCHITECTURES = ("x86_64", "aarch64")
INTERPRETER_CONSTRAINT = "CPython>=3.11,<3.15"


def platforms() -> list[str]:
    """Abbreviated platforms with a three-part Python version: cryptography's metadata has a
    ``python_full_version`` marker, which pip cannot evaluate for ``cp-311`` (pex refuses)."""
    return [
        f"manylinux2014_{arch}-cp-{version[0]}.{version[1:]}.0-cp{version}"
        for version in PYTHON_VERSIONS
        for arch in ARCHITECTURES
    ]


def tool(name: str) -> str:
    """``pex``/``pex3`` beside the running interpreter (the project venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev extra (pip install -e '.[dev]')")
    return found


def runtime_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"])


def lock() -> None:
    """Regenerate requirements/pex.lock from pyproject's dependencies and the constraints."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(runtime_requirements()) + "\n")
        subprocess.run(
            [
                tool("pex3"),
                "lock",
                "create",
                "--style",
                "universal",
                "--target-system",
                "linux",
                "--interpreter-constraint",
                INTERPRETER_CONSTRAINT,
                "--pip-version",
                PIP_VERSION,
                "--constraints",
                str(CONSTRAINTS),
                "--requirement",
                str(requirements),
                "--indent",
                "1",
                "--output",
                str(LOCK),
            ],
            check=True,
        )
    print(f"wrote {LOCK.relative_to(ROOT)}")


def _constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[_canonical(name)] = version
    return pins


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def lock_problems() -> list[str]:
    """Why requirements/pex.lock is stale (empty when it matches its inputs)."""
    data = json.loads(LOCK.read_text())
    problems = []
    if sorted(data["requirements"]) != runtime_requirements():
        problems.append(
            f"lock requirements {sorted(data['requirements'])} != pyproject dependencies "
            f"{runtime_requirements()}"
        )
    pins = _constraint_pins()
    for resolve in data["locked_resolves"]:
        for locked in resolve["locked_requirements"]:
            name, version = _canonical(locked["project_name"]), locked["version"]
            if name not in pins:
                problems.append(f"{name} {version} is locked but not in {CONSTRAINTS.name}")
            elif pins[name] != version:
                problems.append(f"{name}: locked {version}, constraints say {pins[name]}")
    return problems


def stage_sources(into: Path) -> None:
    """Copy the package's ``*.py`` files, in sorted order, with fixed mode and mtime."""
    for source in sorted((ROOT / PACKAGE).rglob("*.py")):
        if "__pycache__" in source.parts:
            continue
        target = into / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        target.chmod(0o644)
        os.utime(target, (0, 0))


def build(output: Path) -> Path:
    """Build the .pyz at ``output`` (atomically: a failed build leaves no half file)."""
    problems = lock_problems()
    if problems:
        raise SystemExit(
            "requirements/pex.lock is stale (run `python build_zipapp.py lock`):\n  "
            + "\n  ".join(problems)
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vk-trio-pyz-") as tmp:
        sources = Path(tmp) / "src"
        stage_sources(sources)
        partial = Path(tmp) / output.name
        command = [
            tool("pex"),
            "--lock",
            str(LOCK),
            "--pip-version",
            PIP_VERSION,
            "--sources-directory",
            str(sources),
            "--entry-point",
            ENTRY_POINT,
            "--venv",
            "--sh-boot",
            "--include-tools",
            "--python-shebang",
            "/usr/bin/env python3",
            # the boot script then looks for a matching python3.X, and refuses older ones clearly
            "--interpreter-constraint",
            INTERPRETER_CONSTRAINT,
            *[arg for platform in platforms() for arg in ("--platform", platform)],
            "--output-file",
            str(partial),
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # it prints the path
        shutil.move(partial, output)
    return output


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "command", nargs="?", default="build", choices=["build", "lock", "check-lock"]
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock()
        return 0
    if args.command == "check-lock":
        problems = lock_problems()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    started = time.monotonic()
    path = build(args.output)
    size = path.stat().st_size
    print(
        f"built {path} ({size / 1e6:.2f} MB, sha256 {sha256(path)}) "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
