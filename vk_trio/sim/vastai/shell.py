"""Just enough POSIX shell to run what clients put in front of a container's command.

Clients start containers as ``/bin/sh -c SCRIPT NAME ARG...`` (dstack does; vk-trio's Job wrapper
runs the pod's command as ``"$@"``, prints a marker line with its exit code, then idles so the
logs stay readable). A simulator that ignored the script would hide a broken wrapper, so this
module turns such a script into a timeline the instance then follows: the lines it prints and
when, and when the process exits with which code (or that it never does).

Supported: statements separated by ``;`` or newlines; ``"$@"`` and ``exec "$@"`` (run the
scripted workload, the real command); ``NAME=WORD``; ``echo``; ``printf FORMAT ARGS`` (``%s``,
``%d``, ``\\n``); ``sleep N`` / ``sleep infinity``; ``while :; do ...; done`` and
``while true; ...`` (forever, when the body sleeps); ``exit [N]``; ``:``/``true``. Words expand
``$?``, ``$NAME``, ``${NAME}``, ``$0``..``$9`` and ``$(date +%s)``; quoting follows the shell
('single' literal, "double" expanding, backslash escapes). Anything else raises ``Unsupported``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

SHELLS = frozenset({"sh", "bash", "dash", "ash"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Unsupported(ValueError):
    """A script the simulator cannot run faithfully."""


@dataclass(frozen=True, kw_only=True)
class Command:
    """What the wrapped command does once started: seconds to run (``None``: forever), the lines
    it prints (spread over the run), its exit code."""

    run_seconds: float | None
    lines: tuple[str, ...] = ()
    exit_code: int = 0


@dataclass(kw_only=True)
class Timeline:
    """A process's future, in seconds after it started."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    exit_at: float | None = None  # None: runs forever
    exit_code: int | None = None


def plain(command: Command) -> Timeline:
    """The timeline of a command that is the container's process itself."""
    timeline = Timeline()
    _run(timeline, command, 0.0)
    if command.run_seconds is not None:
        timeline.exit_at = command.run_seconds
        timeline.exit_code = command.exit_code
    return timeline


def is_shell_script(argv: Sequence[str]) -> bool:
    return len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in SHELLS and argv[1] == "-c"


def run_script(argv: Sequence[str], command: Command, *, started_epoch: float) -> Timeline:
    """The timeline of ``sh -c SCRIPT NAME ARGS...`` whose ``"$@"`` is ``command``."""
    script, positional = argv[2], list(argv[3:])
    variables: dict[str, str] = {"?": "0"}
    for i, value in enumerate(positional[:10]):
        variables[str(i)] = value
    timeline = Timeline()
    now = 0.0
    for statement in _statements(script):
        words = _words(statement)
        if not words:
            continue
        if statement.startswith("while "):
            if not re.match(r"while (:|true); do .*\bsleep\b", statement):
                raise Unsupported(f"a loop that is not an idle forever loop: {statement!r}")
            return timeline  # idles forever
        argv_words = [
            part for word in words for part in _expand(word, variables, started_epoch + now)
        ]
        if argv_words in (["\0@"], ["exec", "\0@"]):
            now = _run(timeline, command, now)
            if command.run_seconds is None:
                return timeline
            variables["?"] = str(command.exit_code)
            if argv_words[0] == "exec":
                timeline.exit_at, timeline.exit_code = now, command.exit_code
                return timeline
            continue
        name = argv_words[0] if argv_words else ""
        if len(argv_words) == 1 and "=" in name and _NAME.fullmatch(name.split("=", 1)[0]):
            key, value = name.split("=", 1)
            variables[key] = value
        elif name == "echo":
            timeline.lines.append((now, " ".join(argv_words[1:])))
            variables["?"] = "0"
        elif name == "printf":
            for line in _printf(argv_words[1:]).split("\n")[:-1]:
                timeline.lines.append((now, line))
            variables["?"] = "0"
        elif name == "sleep":
            seconds = _seconds(argv_words[1:])
            if math.isinf(seconds):
                return timeline
            now += seconds
        elif name == "exit":
            code = int(argv_words[1]) if len(argv_words) > 1 else int(variables["?"])
            timeline.exit_at, timeline.exit_code = now, code
            return timeline
        elif name in (":", "true"):
            variables["?"] = "0"
        else:
            raise Unsupported(f"cannot run {statement!r}")
    timeline.exit_at, timeline.exit_code = now, int(variables["?"])
    return timeline


def _run(timeline: Timeline, command: Command, now: float) -> float:
    lines = command.lines
    if command.run_seconds is None or not lines:
        timeline.lines += [(now, line) for line in lines]
    else:
        step = command.run_seconds / len(lines)
        timeline.lines += [(now + i * step, line) for i, line in enumerate(lines)]
    return now + (command.run_seconds or 0.0)


def _statements(script: str) -> list[str]:
    """Top-level statements; a ``while ... done`` block stays one statement."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(script):
        ch = script[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote == '"' and i + 1 < len(script):
                current.append(script[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "\\" and i + 1 < len(script):
            current += [ch, script[i + 1]]
            i += 1
        elif ch in ";\n":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    if quote:
        raise Unsupported("unterminated quote")
    parts.append("".join(current).strip())
    merged: list[str] = []
    loop: list[str] = []
    for part in parts:
        if loop or part.startswith("while "):
            loop.append(part)
            if part == "done" or part.endswith(" done"):
                merged.append("; ".join(loop))
                loop = []
        elif part:
            merged.append(part)
    if loop:
        raise Unsupported("while without done")
    return merged


def _words(statement: str) -> list[list[tuple[str, str]]]:
    """Split into words of (kind, text) pieces: kind is "'" literal, '"' or "" expandable."""
    words: list[list[tuple[str, str]]] = []
    word: list[tuple[str, str]] | None = None
    i = 0
    while i < len(statement):
        ch = statement[i]
        if ch in " \t":
            if word is not None:
                words.append(word)
                word = None
            i += 1
            continue
        word = word if word is not None else []
        if ch == "'":
            end = statement.index("'", i + 1)
            word.append(("'", statement[i + 1 : end]))
            i = end + 1
        elif ch == '"':
            j, buf = i + 1, []
            while statement[j] != '"':
                if statement[j] == "\\" and statement[j + 1] in '"\\$`':
                    j += 1
                    buf.append("\\" + statement[j] if statement[j] == "$" else statement[j])
                else:
                    buf.append(statement[j])
                j += 1
            word.append(('"', "".join(buf)))
            i = j + 1
        elif ch == "\\":
            word.append(("'", statement[i + 1]))
            i += 2
        else:
            j = i
            while j < len(statement) and statement[j] not in " \t'\"\\":
                j += 1
            word.append(("", statement[i:j]))
            i = j
    if word is not None:
        words.append(word)
    return words


_EXPANSION = re.compile(r"\\\$|\$\(([^)]*)\)|\$\{(\w+)\}|\$(\?|@|[0-9]|[A-Za-z_][A-Za-z0-9_]*)")


def _expand(word: list[tuple[str, str]], variables: dict[str, str], epoch: float) -> list[str]:
    """One word after expansion (``"$@"`` becomes the marker ``"\\0@"``); unquoted expansions
    are not field-split (the scripts we run quote them, and POSIX says they should)."""
    if word == [('"', "$@")]:
        return ["\0@"]

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        if match.group(1) is not None:
            if match.group(1).strip() != "date +%s":
                raise Unsupported(f"command substitution $({match.group(1)})")
            return str(int(epoch))
        name = match.group(2) or match.group(3)
        if name == "@":
            raise Unsupported('$@ outside a lone "$@" word')
        return variables.get(name, "")

    text = "".join(
        piece if kind == "'" else _EXPANSION.sub(substitute, piece) for kind, piece in word
    )
    return [text]


def _printf(args: list[str]) -> str:
    if not args:
        raise Unsupported("printf without a format")
    fmt, values = args[0].replace("\\n", "\n"), list(args[1:])

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        value = values.pop(0) if values else ""
        return str(int(value or 0)) if match.group(0) == "%d" else value

    return re.sub(r"%%|%s|%d", fill, fmt)


def _seconds(args: list[str]) -> float:
    if args == ["infinity"]:
        return math.inf
    try:
        return float(args[0].rstrip("s"))
    except (IndexError, ValueError):
        raise Unsupported(f"sleep {' '.join(args)}") from None
