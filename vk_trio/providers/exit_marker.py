"""The exit marker: the one line the wrapper prints when a pod's program ends. PURE.

Neither RunPod nor Vast.ai reports a container's exit code, so vk-trio runs the pod's program
under a small POSIX-shell wrapper (providers/runpod/mapping.py, providers/vastai/translate.py)
that prints, after each run of the program::

    vk-trio-exit nonce=<16 hex> [run=<n>] code=<0-255> [at=<epoch seconds>]

* ``nonce`` is random per attempt: the agent draws it when it rents the instance and writes it
  into the wrapper's script, never into the program's environment. Only lines with the
  instance's own nonce count, so a program that prints ``vk-trio-exit ... code=0`` (or the old
  ``vk-trio:exit-code=0``) itself, by accident or on purpose, changes nothing.
* Only a whole line in exactly this form is a marker: the code is what a shell's ``$?`` can be
  (0-255), ``run`` counts the program's runs on the instance (wrappers that restart it in place),
  ``at`` is a plausible epoch (``date +%s``; empty or absent where the image has no ``date``).
  Anything else (a 5,000-digit code, ``at=`` beyond the year 9999, a marker inside a longer
  line) is not a marker, never an error.

``parse`` is the one place markers are recognised; ``last_in`` reads a log text. The logs shown
to users (``kubectl logs``) hide the lines ``parse`` accepts for the instance's nonce, and only
those: a program's own marker-like output is its output.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

PREFIX = "vk-trio-exit"
MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second a datetime can hold
_LINE = re.compile(
    rf"{PREFIX} nonce=([0-9a-f]{{16}})(?: run=([0-9]{{1,9}}))? code=([0-9]{{1,3}})"
    r"(?: at=([0-9]{0,12}))?[ \t\r]*"
)
_NONCE = re.compile(rf"{PREFIX} nonce=([0-9a-f]{{16}})")


@dataclass(frozen=True, kw_only=True, slots=True)
class ExitMarker:
    """One run of the program ended with ``code`` (``run``: which run; ``at``: epoch seconds)."""

    code: int
    run: int | None = None
    at: float | None = None


def new_nonce() -> str:
    """A fresh nonce for one attempt (64 random bits, as 16 hex digits)."""
    return secrets.token_hex(8)


def echo(
    nonce: str, *, code: str = "$code", run: str | None = None, at: str | None = "$(date +%s)"
) -> str:
    """The wrapper's shell statement that prints the marker (``code``/``run``/``at``: shell
    words; None leaves the field out)."""
    words = [PREFIX, f"nonce={nonce}"]
    if run is not None:
        words.append(f"run={run}")
    words.append(f"code={code}")
    if at is not None:
        words.append(f"at={at}")
    return f'echo "{" ".join(words)}"'


def parse(line: str, nonce: str) -> ExitMarker | None:
    """The marker ``line`` is for ``nonce``, or None (not a marker, malformed, out of range)."""
    match = _LINE.fullmatch(line)
    if match is None or match.group(1) != nonce or not nonce:
        return None
    code = int(match.group(3))
    if code > 255:
        return None
    at: float | None = None
    if match.group(4):
        epoch = int(match.group(4))
        if epoch > MAX_EPOCH:
            return None
        at = float(epoch)
    run = int(match.group(2)) if match.group(2) is not None else None
    return ExitMarker(code=code, run=run, at=at)


def looks_like(line: str) -> bool:
    """Is ``line`` in a wrapper's marker shape, whatever its nonce? The net behind the
    providers' own filtering (which knows the nonce) for places that show or keep logs without
    knowing it (the kubelet API, retained logs): a marker never reaches ``kubectl logs``."""
    return len(line) < 256 and _LINE.fullmatch(line.strip()) is not None


def last_in(text: str, nonce: str) -> ExitMarker | None:
    """The last marker for ``nonce`` among the lines of ``text``."""
    found: ExitMarker | None = None
    for line in text.splitlines():
        marker = parse(line, nonce)
        if marker is not None:
            found = marker
    return found


def all_in(text: str, nonce: str) -> list[ExitMarker]:
    """Every marker for ``nonce`` among the lines of ``text``, in order."""
    return [m for line in text.splitlines() if (m := parse(line, nonce)) is not None]


def nonce_in(script: str | None) -> str | None:
    """The nonce a wrapper script prints (read back from an instance's command), or None."""
    match = _NONCE.search(script or "")
    return match.group(1) if match else None
