"""Just enough POSIX shell to run what clients put in front of a container's command.

Clients start containers as ``/bin/sh -c SCRIPT NAME ARG...`` (dstack does; vk-trio's Job wrapper
runs the pod's command as ``"$@"``, prints a marker line with its exit code, then idles so the
logs stay readable). A simulator that ignored the script would hide a broken wrapper, so this
module turns such a script into a timeline the instance then follows: the lines it prints and
when, and when the process exits with which code (or that it never does).

Supported: statements separated by ``;`` or newlines; ``"$@"`` and ``exec "$@"`` (run the
scripted workload, the real command); ``NAME=WORD``; ``echo``; ``printf FORMAT ARGS`` (``%s``,
``%d``, ``\\n``); ``sleep N`` / ``sleep infinity``; ``while :; do ...; done`` and
``while true; ...`` (idle forever when the body only sleeps; a body that runs ``"$@"`` restarts
the command, the first ``MAX_RUNS`` runs planned); ``exit [N]``; ``:``/``true``. Words expand
``$?``, ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``$0``..``$9``, ``$(date +%s)`` and
``$((arithmetic))`` (integers, ``+ - * / %``, comparisons, ``&& ||``, ``?:``); quoting follows
the shell ('single' literal, "double" expanding, backslash escapes). Anything else raises
``Unsupported``.
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


class _Ended(Exception):
    """The script stopped here: it exited, or idles (or runs its command) forever."""


MAX_RUNS = 2000  # a loop that restarts the command: this many runs are planned, then it idles


def run_script(argv: Sequence[str], command: Command, *, started_epoch: float) -> Timeline:
    """The timeline of ``sh -c SCRIPT NAME ARGS...`` whose ``"$@"`` is ``command``."""
    script, positional = argv[2], list(argv[3:])
    variables: dict[str, str] = {"?": "0"}
    for i, value in enumerate(positional[:10]):
        variables[str(i)] = value
    run = _Script(Timeline(), command, variables, started_epoch)
    try:
        run.block(_statements(script))
    except _Ended:
        return run.timeline
    run.timeline.exit_at, run.timeline.exit_code = run.now, int(variables["?"])
    return run.timeline


@dataclass(kw_only=True)
class _Loop:
    body: list[str]


class _Script:
    def __init__(
        self, timeline: Timeline, command: Command, variables: dict[str, str], epoch: float
    ) -> None:
        self.timeline, self.command, self.variables, self.epoch = (
            timeline,
            command,
            variables,
            epoch,
        )
        self.now = 0.0
        self.runs = 0

    def block(self, statements: list[str]) -> None:
        for statement in statements:
            loop = _loop(statement)
            if loop is not None:
                self.loop(loop)
            else:
                self.statement(statement)

    def loop(self, loop: _Loop) -> None:
        """``while :; do ...; done``: forever (an idle loop ends the plan at once)."""
        if not any('"$@"' in part for part in loop.body):
            if not any(re.match(r"sleep\b", part) for part in loop.body):
                raise Unsupported(f"a loop that never waits: {loop.body!r}")
            raise _Ended  # idles forever
        while self.runs < MAX_RUNS:
            before = self.now
            self.block(loop.body)
            if self.now == before:
                raise Unsupported("a loop whose command takes no time")
        raise _Ended

    def statement(self, statement: str) -> None:
        timeline, variables = self.timeline, self.variables
        words = _words(statement)
        if not words:
            return
        argv_words = [
            part for word in words for part in _expand(word, variables, self.epoch + self.now)
        ]
        if argv_words in (["\0@"], ["exec", "\0@"]):
            self.runs += 1
            self.now = _run(timeline, self.command, self.now)
            if self.command.run_seconds is None:
                raise _Ended
            variables["?"] = str(self.command.exit_code)
            if argv_words[0] == "exec":
                timeline.exit_at, timeline.exit_code = self.now, self.command.exit_code
                raise _Ended
            return
        name = argv_words[0] if argv_words else ""
        if len(argv_words) == 1 and "=" in name and _NAME.fullmatch(name.split("=", 1)[0]):
            key, value = name.split("=", 1)
            variables[key] = value
        elif name == "echo":
            timeline.lines.append((self.now, " ".join(argv_words[1:])))
            variables["?"] = "0"
        elif name == "printf":
            for line in _printf(argv_words[1:]).split("\n")[:-1]:
                timeline.lines.append((self.now, line))
            variables["?"] = "0"
        elif name == "sleep":
            seconds = _seconds(argv_words[1:])
            if math.isinf(seconds):
                raise _Ended
            self.now += seconds
        elif name == "exit":
            code = int(argv_words[1]) if len(argv_words) > 1 else int(variables["?"])
            timeline.exit_at, timeline.exit_code = self.now, code
            raise _Ended
        elif name in (":", "true"):
            variables["?"] = "0"
        else:
            raise Unsupported(f"cannot run {statement!r}")


_SEP = "\x1f"  # joins the statements of a loop into one (it cannot occur in a script we run)


def _loop(statement: str) -> _Loop | None:
    if not statement.startswith("while "):
        return None
    parts = statement.split(_SEP)
    head, body = parts[0].strip(), [*parts[1:]]
    if head not in ("while :", "while true") or not body or not body[0].startswith("do"):
        raise Unsupported(f"a loop that is not 'while :; do ...; done': {statement!r}")
    body[0] = body[0][2:]
    body[-1] = body[-1].removesuffix("done")
    return _Loop(body=[part.strip() for part in body if part.strip()])


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
                merged.append(_SEP.join(loop))
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
                if statement.startswith("$(", j):  # $(...) and $((...)) are one word
                    j = _closing(statement, j + 1)
                j += 1
            word.append(("", statement[i:j]))
            i = j
    if word is not None:
        words.append(word)
    return words


def _closing(text: str, start: int) -> int:
    """The index of the ``)`` matching the ``(`` at ``start``."""
    depth = 0
    for k in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return k
    raise Unsupported("unbalanced parentheses")


_EXPANSION = re.compile(
    r"\\\$|\$\(\((.*?)\)\)|\$\(([^)]*)\)|\$\{(\w+)(?::-([^}]*))?\}"
    r"|\$(\?|@|[0-9]|[A-Za-z_][A-Za-z0-9_]*)"
)


def _expand(word: list[tuple[str, str]], variables: dict[str, str], epoch: float) -> list[str]:
    """One word after expansion (``"$@"`` becomes the marker ``"\\0@"``); unquoted expansions
    are not field-split (the scripts we run quote them, and POSIX says they should)."""
    if word == [('"', "$@")]:
        return ["\0@"]

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        if match.group(1) is not None:
            inner = _EXPANSION.sub(substitute, match.group(1))
            return str(arithmetic(inner, variables))
        if match.group(2) is not None:
            if match.group(2).strip() != "date +%s":
                raise Unsupported(f"command substitution $({match.group(2)})")
            return str(int(epoch))
        name = match.group(3) or match.group(5)
        if name == "@":
            raise Unsupported('$@ outside a lone "$@" word')
        value = variables.get(name, "")
        if match.group(4) is not None and not value:
            return match.group(4)  # ${name:-default}
        return value

    text = "".join(
        piece if kind == "'" else _EXPANSION.sub(substitute, piece) for kind, piece in word
    )
    return [text]


_TOKEN = re.compile(r"\s*(\d+|[A-Za-z_]\w*|<=|>=|==|!=|&&|\|\||[-+*/%()<>?:])")
_BINARY = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}


def arithmetic(text: str, variables: dict[str, str]) -> int:
    """``$((...))``: integers, names, ``+ - * / %``, comparisons, ``&& ||``, ``?:``, parens."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise Unsupported(f"arithmetic $(({text}))")
        tokens.append(match.group(1))
        pos = match.end()
    parser = _Arith(tokens, variables)
    value = parser.ternary()
    if parser.pos != len(tokens):
        raise Unsupported(f"arithmetic $(({text}))")
    return value


class _Arith:
    def __init__(self, tokens: list[str], variables: dict[str, str]) -> None:
        self.tokens, self.variables, self.pos = tokens, variables, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise Unsupported("arithmetic ends too soon")
        self.pos += 1
        return token

    def ternary(self) -> int:
        condition = self.binary(1)
        if self.peek() != "?":
            return condition
        self.take()
        yes = self.ternary()
        if self.take() != ":":
            raise Unsupported("arithmetic ?: without :")
        no = self.ternary()
        return yes if condition else no

    def binary(self, level: int) -> int:
        left = self.unary()
        while (op := self.peek()) in _BINARY and _BINARY[op] >= level:
            self.take()
            right = self.binary(_BINARY[op] + 1)
            left = _apply(op, left, right)
        return left

    def unary(self) -> int:
        token = self.take()
        if token == "-":
            return -self.unary()
        if token == "+":
            return self.unary()
        if token == "(":
            value = self.ternary()
            if self.take() != ")":
                raise Unsupported("arithmetic ( without )")
            return value
        if token.isdigit():
            return int(token)
        if re.fullmatch(r"[A-Za-z_]\w*", token):
            raw = self.variables.get(token, "") or "0"
            return int(raw) if re.fullmatch(r"-?\d+", raw) else 0
        raise Unsupported(f"arithmetic token {token!r}")


def _apply(op: str, left: int, right: int) -> int:
    if op in ("/", "%") and right == 0:
        raise Unsupported("arithmetic division by zero")
    results = {
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
        "/": lambda: int(left / right),
        "%": lambda: left - right * int(left / right),
        "<": lambda: int(left < right),
        "<=": lambda: int(left <= right),
        ">": lambda: int(left > right),
        ">=": lambda: int(left >= right),
        "==": lambda: int(left == right),
        "!=": lambda: int(left != right),
        "&&": lambda: int(bool(left and right)),
        "||": lambda: int(bool(left or right)),
    }
    return results[op]()


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
