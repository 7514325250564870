"""Fixtures of the packaging tests: the .pyz, built once per session from the work tree.

The tests run the built artifact, never the source tree: a module missing from the .pyz, a
dependency missing from the lock, or a wheel for the wrong platform fails here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import build_zipapp


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist-like vk-trio.pyz built from this tree (pex's download cache is the user's)."""
    return build_zipapp.build(tmp_path_factory.mktemp("pyz") / "vk-trio.pyz")


@pytest.fixture(scope="session")
def pyz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment to run the .pyz in: a PEX_ROOT of its own, so the first run is a cold one."""
    env = dict(os.environ)
    env["PEX_ROOT"] = str(tmp_path_factory.mktemp("pex-root"))
    yield env
