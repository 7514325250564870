"""Build (once) and cache the single `controlplane` binary from tests/controlplane/gocp.

The integration tests need a real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler. Compiling them takes minutes on a small machine, so the binary is cached under
~/.cache/vk-trio keyed by a hash of the Go sources: an unchanged go.mod/go.sum/*.go never
rebuilds, a changed one builds into a new directory. A file lock keeps two pytest processes
(or pytest and `python -m tests.controlplane build`) from compiling the same thing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

GOCP_DIR = Path(__file__).resolve().parent / "gocp"
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
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vk-trio"


def cached_binary_path(gocp_dir: Path = GOCP_DIR) -> Path:
    """Where the binary for the current sources lives (it may not exist yet)."""
    return cache_root() / f"controlplane-{source_hash(gocp_dir)}" / BINARY_NAME


def ensure_binary() -> Path:
    """Return a runnable controlplane binary, building it first if the cache lacks it."""
    prebuilt = os.environ.get(ENV_PREBUILT)
    if prebuilt:
        return _checked_prebuilt(Path(prebuilt))
    target = cached_binary_path()
    if _is_executable(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / ".lock"):
        if not _is_executable(target):  # another process may have built it while we waited
            _go_build(output=target)
    return target


def install_prebuilt(binary: Path) -> Path:
    """Copy an already built binary (same sources) into the cache, atomically."""
    target = cached_binary_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / ".lock"):
        tmp = _temp_path_beside(target)
        shutil.copy2(binary, tmp)
        os.replace(tmp, target)
    return target


def _checked_prebuilt(path: Path) -> Path:
    if not _is_executable(path):
        raise BuildError(f"${ENV_PREBUILT}={path} is not an executable file")
    return path


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """flock(LOCK_EX) on a lock file for the duration of a `with` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _temp_path_beside(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    return Path(name)


def _go_build(*, output: Path) -> None:
    """`go build` into a temp file beside `output`, then rename it into place."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    tmp = _temp_path_beside(output)
    log_path = output.parent / "build.log"
    try:
        with log_path.open("wb") as log:
            proc = subprocess.run(
                [go, *GO_BUILD_ARGS, "-o", str(tmp), "."],
                cwd=GOCP_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise BuildError(f"go build failed (rc={proc.returncode}), log {log_path}:\n{tail}")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
