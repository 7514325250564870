"""Build (once) and cache the Go binaries of the tests: `controlplane` (tests/controlplane/gocp)
and `kwok` (sigs.k8s.io/kwok, pinned by tests/controlplane/kwok/go.mod and go.sum).

The integration tests need a real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler. Compiling them takes minutes on a small machine, so the binary is cached under
~/.cache/vk-trio keyed by a hash of the Go sources: an unchanged go.mod/go.sum/*.go never
rebuilds, a changed one builds into a new directory. A file lock keeps two pytest processes
(or pytest and `python -m tests.controlplane build`) from compiling the same thing at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

GOCP_DIR = Path(__file__).resolve().parent / "gocp"
KWOK_DIR = Path(__file__).resolve().parent / "kwok"
KWOK_PACKAGE = "sigs.k8s.io/kwok/cmd/kwok"
GOBUILD_SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "gobuild.py"
BINARY_NAME = "controlplane"
ENV_PREBUILT = "VK_TRIO_CONTROLPLANE_BIN"
GO_BUILD_ARGS = ("build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w")


class BuildError(RuntimeError):
    """The Go build failed; the message carries the tail of its log."""


def source_files(gocp_dir: Path = GOCP_DIR) -> list[Path]:
    """go.mod, go.sum and every *.go file, sorted by name: the inputs of the hash."""
    files = [gocp_dir / "go.mod", gocp_dir / "go.sum", *gocp_dir.glob("*.go")]
    return sorted(files, key=lambda path: path.name)


def source_hash(gocp_dir: Path = GOCP_DIR) -> str:
    """sha256 over the name and content of every source file (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in source_files(gocp_dir):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """~/.cache/vk-trio, or $XDG_CACHE_HOME/vk-trio when that is set."""
    root: Path = gobuild().cache_root()
    return root


def cached_binary_path(gocp_dir: Path = GOCP_DIR) -> Path:
    """Where the binary for the current sources lives (it may not exist yet)."""
    return cache_root() / f"controlplane-{source_hash(gocp_dir)}" / BINARY_NAME


def ensure_binary() -> Path:
    """Return a runnable controlplane binary, building it first if the cache lacks it."""
    prebuilt = os.environ.get(ENV_PREBUILT)
    if prebuilt:
        return _checked_prebuilt(Path(prebuilt))
    target: Path = gobuild().cached_build(cached_binary_path(), _go_build)
    return target


def cached_kwok_path() -> Path:
    """Where kwok for the pinned module versions lives (it may not exist yet)."""
    return cache_root() / f"kwok-{source_hash(KWOK_DIR)}" / "kwok"


def ensure_kwok() -> Path:
    """Return a runnable kwok (the simulated kubelet of the tests' "local" GPU nodes), building
    it first if the cache lacks it: about 4 minutes on two cores, once."""

    def build(output: Path) -> None:
        try:
            gobuild().go_build(GO_BUILD_ARGS[1:], KWOK_PACKAGE, cwd=KWOK_DIR, output=output)
        except gobuild().GoBuildFailed as exc:
            raise BuildError(str(exc)) from None

    target: Path = gobuild().cached_build(cached_kwok_path(), build)
    return target


def install_prebuilt(binary: Path) -> Path:
    """Copy an already built binary (same sources) into the cache, atomically."""
    target = cached_binary_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with gobuild().exclusive_lock(target.parent / ".lock"):
        tmp = gobuild().temp_path_beside(target)
        shutil.copy2(binary, tmp)
        os.replace(tmp, target)
    return target


def gobuild() -> ModuleType:
    """packaging/gobuild.py, shared with packaging/render.py (``packaging`` is PyPI's name)."""
    name = "vk_trio_gobuild"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, GOBUILD_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _checked_prebuilt(path: Path) -> Path:
    if not gobuild().is_executable(path):
        raise BuildError(f"${ENV_PREBUILT}={path} is not an executable file")
    return path


def _go_build(output: Path) -> None:
    """`go build` into a temp file beside `output`, then rename it into place."""
    try:
        gobuild().go_build(GO_BUILD_ARGS[1:], ".", cwd=GOCP_DIR, output=output)
    except gobuild().GoBuildFailed as exc:
        raise BuildError(str(exc)) from None
