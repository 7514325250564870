"""The OCI image from packaging/image/build_image.py: reproducible, non-root, read-only, working.

The image is built from this session's .pyz (the base rootfs comes from the cache under
~/.cache/vk-trio/image/ after its first build), inspected with skopeo, unpacked with umoci and
run the way a container runtime would: in its own mount namespace, the root filesystem mounted
read-only, a tmpfs on /tmp, /proc mounted, as uid/gid 65532, chrooted into the image. There it
prints its version, and then runs the node agent against the real control plane until a pod is
Running, and stops on SIGTERM with exit 0. Needs root (mmdebstrap, chroot, mount); these tests
fail, never skip, when that or a tool is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import trio

from tests.agent_harness import unique_node
from tests.controlplane.launcher import ControlPlane
from tests.packaging.agent_check import agent_flags, check_agent_runs_a_pod_and_stops, free_port
from vk_trio import __version__

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "image" / "build_image.py"

# Runs as the image's process: private mounts (gone when it exits), read-only root, tmpfs /tmp,
# then exec (same PID all the way, so signals and the exit status are the agent's own).
IN_IMAGE = r"""
set -eu
R="$VK_ROOTFS"
mount --bind "$R" "$R"
mount -o remount,bind,ro "$R"
mount -t proc proc "$R/proc"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$R/tmp"
if [ -n "${VK_KUBECONFIG:-}" ]; then
    cp "$VK_KUBECONFIG" "$R/tmp/kubeconfig"
    chown 65532:65532 "$R/tmp/kubeconfig"
    chmod 0600 "$R/tmp/kubeconfig"
fi
exec chroot --userspec=65532:65532 "$R" /usr/bin/env -i \
    PATH=/opt/vk-trio/bin:/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 LC_ALL=C.UTF-8 "$@"
"""


def load_build_image() -> ModuleType:
    """packaging/image/build_image.py (the directory name would shadow PyPI's `packaging`)."""
    spec = importlib.util.spec_from_file_location("vk_trio_build_image", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_image() -> ModuleType:
    if os.geteuid() != 0:
        pytest.fail("the image tests need root (mmdebstrap --mode=root, chroot, mount)")
    module = load_build_image()
    module.ensure_tools()  # apt-get install mmdebstrap umoci skopeo when missing
    return module


@pytest.fixture(scope="module")
def image(
    build_image: ModuleType, pyz: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str]:
    """(layout, tag, manifest digest) of the image built from this session's .pyz."""
    layout = tmp_path_factory.mktemp("image") / "oci"
    digest: str = build_image.build(pyz=pyz, layout=layout, epoch=build_image.DEFAULT_EPOCH)
    return layout, __version__, digest


@pytest.fixture(scope="module")
def rootfs(image: tuple[Path, str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout, tag, _ = image
    bundle = tmp_path_factory.mktemp("bundle") / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["user"]["uid"] == 65532
    assert config["process"]["user"]["gid"] == 65532
    assert config["process"]["args"] == ["/opt/vk-trio/pex", "run"]
    return bundle / "rootfs"


def in_image(rootfs: Path, *argv: str) -> list[str]:
    if shutil.which("unshare") is None:
        pytest.fail("unshare not found: apt-get install -y util-linux")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", IN_IMAGE, "sh", *argv]


def skopeo_inspect(layout: Path, tag: str, *extra: str) -> dict[str, object]:
    result = subprocess.run(
        ["skopeo", "--insecure-policy", "inspect", *extra, f"oci:{layout}:{tag}"],
        capture_output=True,
        text=True,
        check=True,
    )
    inspected: dict[str, object] = json.loads(result.stdout)
    return inspected


def test_the_same_inputs_give_the_same_manifest_digest(
    build_image: ModuleType,
    image: tuple[Path, str, str],
    pyz: Path,
    tmp_path: Path,
) -> None:
    _, _, first = image
    again = build_image.build(pyz=pyz, layout=tmp_path / "oci", epoch=build_image.DEFAULT_EPOCH)
    assert again == first


def test_skopeo_shows_linux_amd64_user_65532_and_the_entrypoint(
    image: tuple[Path, str, str],
) -> None:
    layout, tag, digest = image
    inspected = skopeo_inspect(layout, tag)
    assert inspected["Digest"] == digest
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")
    assert inspected["Created"] == "2024-01-01T00:00:00Z"
    assert isinstance(inspected["Layers"], list) and len(inspected["Layers"]) == 2
    config = skopeo_inspect(layout, tag, "--config")["config"]
    assert isinstance(config, dict)
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/opt/vk-trio/pex"]
    assert config["Cmd"] == ["run"]


def test_the_entrypoint_prints_its_version_read_only_as_65532(rootfs: Path) -> None:
    result = subprocess.run(
        in_image(rootfs, "/opt/vk-trio/pex", "version"),
        env={**os.environ, "VK_ROOTFS": str(rootfs)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"vk-trio {__version__} (Python 3.11.")
    whoami = subprocess.run(
        in_image(rootfs, "/usr/bin/id", "-u"),
        env={**os.environ, "VK_ROOTFS": str(rootfs)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert whoami.stdout.strip() == "65532"


def test_every_module_is_precompiled_so_a_start_writes_nothing(rootfs: Path) -> None:
    site = rootfs / "opt" / "vk-trio" / "lib" / "python3.11" / "site-packages"
    sources = [p for p in site.rglob("*.py") if p.name != "PEX_EXTRA_SYS_PATH.py"]
    assert any(p.parts[-2] == "vk_trio" for p in sources)
    uncompiled = [
        p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.cpython-311.pyc").is_file()
    ]
    assert not uncompiled, uncompiled[:5]


@pytest.mark.controlplane
async def test_the_image_runs_the_agent_until_a_pod_runs_and_sigterm_exits_0(
    rootfs: Path, controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    node, port = unique_node("img"), free_port()
    flags = agent_flags(
        node=node, port=port, kubeconfig="/tmp/kubeconfig", state_file="/tmp/fake-cloud.json"
    )
    env = {**os.environ, "VK_ROOTFS": str(rootfs), "VK_KUBECONFIG": str(controlplane.kubeconfig)}
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            in_image(rootfs, "/opt/vk-trio/pex", *flags), env=env, stdout=log, stderr=log
        )
    await check_agent_runs_a_pod_and_stops(
        process,
        controlplane=controlplane,
        node=node,
        port=port,
        namespace=namespace,
        log_path=log_path,
    )
