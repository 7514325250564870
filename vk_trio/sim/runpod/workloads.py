"""Scripted container programs: what a simulated pod's process prints, how long it runs, its code.

The simulator runs no containers. Each image gets a ``Workload`` script instead (boot time, log
lines, exit code, duration), so Jobs and crash loops are testable. A pod's ``args`` decide what
the container runs the way Docker would: the image ENTRYPOINT (``Workload.entrypoint``) followed
by the shell-split ``args`` string, or the image's own program when ``args`` is empty.

When the container starts a POSIX shell (``sh -c SCRIPT ...`` with no ENTRYPOINT in the way),
the script is interpreted: a small subset of sh that is enough for wrapper scripts (run the
program, keep ``$?``, ``echo``, ``sleep``, ``exit``, ``exec``); a ``sh -c`` it runs (the pod's
own shell command under the exit-code wrapper) is interpreted in turn. Any other command in the
script runs the image's scripted program. An image with an ENTRYPOINT receives the shell words
as its arguments and so never runs the script, which is what happens on RunPod too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SHELLS = frozenset({"sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"})
MAX_NESTING = 8  # shells run by shells; deeper ones run the image's program (no recursion bomb)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """The scripted behaviour of an image's program."""

    boot_seconds: float = 0.0  # image pull and container start, added to the STARTING phase
    lines: tuple[str, ...] = ()  # printed to stdout, one every ``line_interval`` seconds
    line_interval: float = 1.0
    duration: float | None = None  # seconds until the process exits; None: it never does
    exit_code: int = 0
    entrypoint: tuple[str, ...] = ()  # the image ENTRYPOINT; ``args`` are appended to it
    cmd: tuple[str, ...] = ()  # the image CMD, as its registry config says (sim/registry.py)
    pull_error: str | None = None  # the image cannot be pulled: the pod goes to ERROR
    registry_username: str | None = None  # a private image: needs a credential with this user


DEFAULT_WORKLOAD = Workload(lines=("container started",))


@dataclass(frozen=True, kw_only=True)
class Plan:
    """One run of a container: lines at offsets from its start, and when it exits (or never)."""

    lines: tuple[tuple[float, str], ...]
    exit_at: float | None  # seconds after the start; None: runs until stopped
    exit_code: int = 0


def plan_run(workload: Workload, args: str, environ: Mapping[str, str] | None = None) -> Plan:
    """What one container run does, given the image's workload and the pod's ``args``."""
    try:
        words = shlex.split(args) if args.strip() else []
    except ValueError:
        words = []
    argv = [*workload.entrypoint, *words]
    if not workload.entrypoint and len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c":
        return _interpret(argv[2], argv[3:], workload, dict(environ or {}))
    return _program(workload, 0.0)


def _program(workload: Workload, start: float) -> Plan:
    lines = tuple(
        (start + i * workload.line_interval, text) for i, text in enumerate(workload.lines)
    )
    if workload.duration is None:
        return Plan(lines=lines, exit_at=None)
    end = start + max(workload.duration, workload.line_interval * max(len(lines) - 1, 0))
    return Plan(lines=lines, exit_at=end, exit_code=workload.exit_code & 0xFF)


def _commands(script: str) -> list[list[str]] | None:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[list[str]] = [[]]
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    for token in tokens:
        if token == ";":
            commands.append([])
        elif set(token) <= set("&|"):
            return None  # pipes, && and || are beyond this little shell
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


_VAR = re.compile(r"\$(\?|@|\d|\{(\w+)\}|\w+)")


def _expand(word: str, variables: Mapping[str, str], positional: Sequence[str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(2) or match.group(1)
        if name == "@":
            return " ".join(positional[1:])
        if name.isdigit():
            index = int(name)
            return positional[index] if index < len(positional) else ""
        return variables.get(name, "")

    return _VAR.sub(value, word)


def _words(
    command: Sequence[str], variables: Mapping[str, str], positional: Sequence[str]
) -> list[str]:
    """The argv a command runs: ``$@`` alone (the quotes already gone) gives one word per
    positional argument, as ``"$@"`` does in sh; other words are expanded in place."""
    argv: list[str] = []
    for word in command:
        if word == "$@":
            argv.extend(positional[1:])
        else:
            argv.append(_expand(word, variables, positional))
    return argv


def _interpret(
    script: str,
    positional: Sequence[str],
    workload: Workload,
    environ: dict[str, str],
    depth: int = 0,
) -> Plan:
    commands = _commands(script)
    if commands is None:
        return _program(workload, 0.0)
    variables = {**environ, "?": "0"}
    now = 0.0
    lines: list[tuple[float, str]] = []
    for words in commands:
        exec_ = words[0] == "exec"
        command = words[1:] if exec_ else words
        if not command:
            continue
        head = command[0]
        if len(command) == 1 and re.fullmatch(r"\w+=.*", head):
            name, _, raw = head.partition("=")
            variables[name] = _expand(raw, variables, positional)
            continue
        if head == "echo":
            lines.append((now, " ".join(_expand(w, variables, positional) for w in command[1:])))
            variables["?"] = "0"
        elif head == "sleep" and command[1:] == ["infinity"]:
            return Plan(lines=tuple(lines), exit_at=None)
        elif head == "sleep" and len(command) == 2 and _number(command[1]) is not None:
            now += _number(command[1]) or 0.0
            variables["?"] = "0"
        elif head == "exit":
            raw = _expand(command[1], variables, positional) if len(command) > 1 else ""
            code = _int(raw, default=int(variables["?"]))
            return Plan(lines=tuple(lines), exit_at=now, exit_code=code & 0xFF)
        elif head in ("true", ":"):
            variables["?"] = "0"
        elif head == "false":
            variables["?"] = "1"
        elif not (argv := _words(command, variables, positional)):
            variables["?"] = "0"  # "$@" without arguments runs nothing, as in sh
            continue
        elif len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c" and depth < MAX_NESTING:
            # a shell run by the script (the pod's own ``sh -c`` under a wrapper): its script
            # is interpreted in turn, with the variables this shell exported
            inner = _interpret(argv[2], argv[3:], workload, dict(environ), depth + 1)
            lines.extend((now + at, text) for at, text in inner.lines)
            if inner.exit_at is None:
                return Plan(lines=tuple(lines), exit_at=None)
            now += inner.exit_at
            variables["?"] = str(inner.exit_code)
        else:
            # "$@" or any other program: the image's scripted program stands in for it.
            run = _program(workload, now)
            lines.extend(run.lines)
            if run.exit_at is None:
                return Plan(lines=tuple(lines), exit_at=None)
            now = run.exit_at
            variables["?"] = str(run.exit_code)
        if exec_:
            return Plan(lines=tuple(lines), exit_at=now, exit_code=int(variables["?"]) & 0xFF)
    return Plan(lines=tuple(lines), exit_at=now, exit_code=int(variables["?"]) & 0xFF)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _int(text: str, *, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default
