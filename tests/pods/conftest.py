"""Fixtures of the pod tests: kwok, the kubelet of simulated local GPU nodes (burst tests)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.controlplane.kwok_nodes import running_kwok
from tests.controlplane.launcher import ControlPlane


@pytest.fixture(scope="session")
def kwok(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """One kwok for the session; it manages the nodes tests register as local GPU nodes."""
    with running_kwok(controlplane, tmp_path_factory.mktemp("kwok")) as proc:
        yield proc
