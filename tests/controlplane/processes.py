"""Start, recognise and stop the control plane's long-running processes.

The components run detached (their own session, output to log files) so that
`python -m tests.controlplane up` can return while they keep running, and a later `down`, from
any process, can stop them by the pids in state.json. A pid alone is not proof: it may have
been reused, so a process counts as ours only if its command line is our binary plus the
component name (or, for a child of this interpreter, its Popen says it runs). Popen objects
are kept for the life of this interpreter so that children we started are reaped (no zombies)
and never garbage-collected while running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

TERM_GRACE_S = 5.0
KILL_WAIT_S = 5.0
POLL_S = 0.05

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(name: str, argv: Sequence[str], *, log_dir: Path) -> int:
    """Start `argv` detached, stdout and stderr to log_dir/<name>.log; return its pid."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def is_ours(pid: int, *, binary: Path, name: str) -> bool:
    """True while `pid` is alive (not a zombie) and runs `binary name ...`."""
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: ask it directly. Its /proc cmdline is briefly empty during exec().
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and argv[:2] == [os.fsencode(binary), name.encode()]


def stop_all(procs: Iterable[tuple[str, int]], *, binary: Path) -> list[str]:
    """SIGTERM every process of ours, SIGKILL what is left after a grace; wait for the end.

    Returns the names of processes that were still running when SIGKILL had to be sent.
    """
    alive = [(name, pid) for name, pid in procs if is_ours(pid, binary=binary, name=name)]
    for _, pid in alive:
        _signal_group(pid, signal.SIGTERM)
    alive = _wait_gone(alive, binary=binary, timeout=TERM_GRACE_S)
    killed = [name for name, _ in alive]
    for _, pid in alive:
        _signal_group(pid, signal.SIGKILL)
    alive = _wait_gone(alive, binary=binary, timeout=KILL_WAIT_S)
    if alive:
        raise RuntimeError(f"processes survived SIGKILL: {alive}")
    return killed


def log_tail(path: Path, *, lines: int = 40) -> str:
    """The end of a component's log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _wait_gone(
    procs: list[tuple[str, int]], *, binary: Path, timeout: float
) -> list[tuple[str, int]]:
    deadline = time.monotonic() + timeout
    while procs and time.monotonic() < deadline:
        time.sleep(POLL_S)
        procs = [(name, pid) for name, pid in procs if is_ours(pid, binary=binary, name=name)]
    return procs


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the component leads (start_new_session made one)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
