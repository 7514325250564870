"""A Go binary built once and cached under ~/.cache/vk-trio/<name>-<key>/, safely across processes.

Both Go tools of the repository are built this way: helm (packaging/render.py, keyed on its
pinned version) and the test control plane (tests/controlplane/build.py, keyed on a hash of its
sources). A binary is written to a temporary file beside its final path and renamed into place,
so a reader never sees half a binary, and the build runs under an exclusive lock on ``.lock`` in
the cache directory, so two processes never compile the same thing at once. Standard library
only, and loaded by path (``packaging`` is PyPI's name): packaging/render.py runs as a plain script.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


class GoBuildFailed(RuntimeError):
    """``go build`` exited non-zero; ``tail`` is the end of its log at ``log``."""

    def __init__(self, returncode: int, log: Path, tail: str) -> None:
        super().__init__(f"go build failed (rc={returncode}), log {log}:\n{tail}")
        self.returncode = returncode
        self.log = log
        self.tail = tail


def cache_root() -> Path:
    """~/.cache/vk-trio, or $XDG_CACHE_HOME/vk-trio when that is set."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vk-trio"


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cached_build(target: Path, build: Callable[[Path], None]) -> Path:
    """``target`` if it is already built, else ``build(target)`` under the directory's lock."""
    if is_executable(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / ".lock"):
        if not is_executable(target):  # another process may have built it while we waited
            build(target)
    return target


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """flock(LOCK_EX) on a lock file for the duration of a `with` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def temp_path_beside(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    return Path(name)


def go_binary() -> str:
    """``go`` on PATH, else where the official tarball installs it (which may not exist)."""
    return shutil.which("go") or "/usr/local/go/bin/go"


def go_build(flags: Sequence[str], package: str, *, cwd: Path, output: Path) -> None:
    """``go build FLAGS -o TMP PACKAGE`` in ``cwd``, logged to build.log beside ``output``, then
    TMP renamed to ``output``; ``GoBuildFailed`` (with the log's tail) when it fails."""
    tmp = temp_path_beside(output)
    log_path = output.parent / "build.log"
    try:
        with log_path.open("wb") as log:
            done = subprocess.run(
                [go_binary(), "build", *flags, "-o", str(tmp), package],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise GoBuildFailed(done.returncode, log_path, tail)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
