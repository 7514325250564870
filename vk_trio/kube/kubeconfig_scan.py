"""Character-level scanning of kubeconfig YAML: position, lines, and the four scalar styles.

The structural parser in :mod:`vk_trio.kube.kubeconfig_yaml` decides *where* a node is; this
base class reads *what* a scalar says: plain scalars folded over lines, single- and
double-quoted scalars with their escapes, and ``|``/``>`` block scalars with chomping and
indentation indicators. The folding rules follow PyYAML's scanner line by line, because
PyYAML is what our tests hold this parser to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from vk_trio.errors import ConfigError
from vk_trio.kube.kubeconfig_scalars import ESCAPE_CODES, ESCAPE_REPLACEMENTS

__all__ = ["BLANK", "BREAK", "EOF", "RawScalar", "Scanner"]

EOF = "\0"
BREAK = "\n" + EOF
BLANK = " \t\n" + EOF
FLOW_INDICATORS = ",[]{}"
INDICATORS = "-?:,[]{}#&*!|>'\"%@`"
MAX_DEPTH = 64


def _check_characters(text: str, source: str) -> None:
    for index, ch in enumerate(text):
        code = ord(ch)
        printable = (
            ch in "\t\n" or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or code >= 0xE000
        ) and ch not in "\u2028\u2029\ufeff"
        if not printable:
            line = text.count("\n", 0, index) + 1
            raise ConfigError(f"{source}, line {line}: character {code:#06x} is not allowed")


class RawScalar(NamedTuple):
    """A scalar before typing: its text and whether it was plain (quoted ones stay str)."""

    text: str
    plain: bool


class Scanner:
    """A cursor over the text (``pos`` is the only state) that reads scalars."""

    def __init__(self, text: str, *, source: str) -> None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        _check_characters(text, source)
        self.text = text + EOF * 4
        self.end = len(text)
        self.pos = 0
        self.depth = 0
        self.source = source

    # ---------------------------------------------------------------- low level

    def error(self, message: str, pos: int | None = None) -> ConfigError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, min(at, self.end)) + 1
        return ConfigError(f"{self.source}, line {line}: {message}")

    @contextmanager
    def nested(self) -> Iterator[None]:
        """Bound the recursion, so hostile input gets a ConfigError, not a RecursionError."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels")
        try:
            yield
        finally:
            self.depth -= 1

    def ch(self, ahead: int = 0) -> str:
        return self.text[min(self.pos + ahead, self.end)]

    def col(self) -> int:
        return self.pos - (self.text.rfind("\n", 0, self.pos) + 1)

    def at_eof(self) -> bool:
        return self.pos >= self.end

    def at_doc_marker(self, pos: int | None = None) -> bool:
        at = self.pos if pos is None else pos
        head = self.text[at : at + 3]
        starts_line = at == 0 or self.text[at - 1] == "\n"
        return starts_line and head in ("---", "...") and self.text[at + 3] in BLANK

    def skip_spaces(self) -> None:
        while self.ch() in " \t":
            self.pos += 1

    def at_line_end(self) -> bool:
        return self.ch() in BREAK or (self.ch() == "#" and self.text[self.pos - 1] in BLANK)

    def skip_blank_lines(self) -> None:
        """Skip whitespace, comments and empty lines, stopping at the next content."""
        while True:
            self.skip_spaces()
            if self.ch() == "#":
                while self.ch() not in BREAK:
                    self.pos += 1
            if self.ch() != "\n" or self.at_eof():
                break
            self.pos += 1
        indentation = self.text[self.text.rfind("\n", 0, self.pos) + 1 : self.pos]
        if "\t" in indentation and not indentation.strip(" \t") and not self.at_eof():
            raise self.error("tabs are not allowed in indentation")

    def expect_line_end(self) -> None:
        self.skip_spaces()
        if self.at_line_end():
            return
        if self.ch() == ":":
            raise self.error("mapping values are not allowed here")
        raise self.error(f"unexpected {self.ch()!r} after a value")

    # ---------------------------------------------------------------- block scalars

    def parse_block_scalar(self, parent: int) -> RawScalar:
        folded = self.ch() == ">"
        self.pos += 1
        chomping, increment = self.parse_block_header()
        min_indent = max(parent + 1, 1)
        if increment is None:
            breaks, max_indent = self.block_scalar_indentation()
            indent = max(min_indent, max_indent)
        else:
            indent = min_indent + increment - 1
            breaks = self.block_scalar_breaks(indent)
        chunks: list[str] = []
        line_break = ""
        while self.col() == indent and not self.at_eof():
            chunks.extend(breaks)
            leading_non_space = self.ch() not in " \t"
            line_end = self.pos
            while self.text[line_end] not in BREAK:
                line_end += 1
            chunks.append(self.text[self.pos : line_end])
            self.pos = line_end
            line_break = self.take_break()
            breaks = self.block_scalar_breaks(indent)
            if not (self.col() == indent and not self.at_eof()):
                break
            if folded and line_break and leading_non_space and self.ch() not in " \t":
                if not breaks:
                    chunks.append(" ")
            else:
                chunks.append(line_break)
        if chomping is not False:
            chunks.append(line_break)
        if chomping is True:
            chunks.extend(breaks)
        return RawScalar("".join(chunks), plain=False)

    def parse_block_header(self) -> tuple[bool | None, int | None]:
        chomping: bool | None = None
        increment: int | None = None
        for _ in range(2):
            if self.ch() in "+-" and chomping is None:
                chomping = self.ch() == "+"
            elif self.ch().isdigit() and self.ch().isascii() and increment is None:
                increment = int(self.ch())
                if increment == 0:
                    raise self.error("block scalar indentation indicator must be 1-9")
            else:
                break
            self.pos += 1
        if self.ch() not in BLANK:
            raise self.error("expected chomping or indentation indicators after | or >")
        self.skip_spaces()
        if not self.at_line_end():
            raise self.error("unexpected text after a block scalar header")
        while self.ch() not in BREAK:
            self.pos += 1
        self.take_break()
        return chomping, increment

    def take_break(self) -> str:
        if self.ch() == "\n" and not self.at_eof():
            self.pos += 1
            return "\n"
        return ""

    def block_scalar_indentation(self) -> tuple[list[str], int]:
        breaks: list[str] = []
        max_indent = 0
        while self.ch() in " \n" and not self.at_eof():
            if self.ch() == "\n":
                breaks.append(self.take_break())
            else:
                self.pos += 1
                max_indent = max(max_indent, self.col())
        return breaks, max_indent

    def block_scalar_breaks(self, indent: int) -> list[str]:
        breaks: list[str] = []
        while self.col() < indent and self.ch() == " ":
            self.pos += 1
        while self.ch() == "\n" and not self.at_eof():
            breaks.append(self.take_break())
            while self.col() < indent and self.ch() == " ":
                self.pos += 1
        return breaks

    # ---------------------------------------------------------------- plain and quoted scalars

    def starts_plain(self, *, flow: bool) -> bool:
        ch = self.ch()
        if ch not in BLANK and ch not in INDICATORS:
            return True
        follower_ok = self.ch(1) not in BLANK and not (flow and self.ch(1) in FLOW_INDICATORS)
        return follower_ok and (ch == "-" or (not flow and ch in "?:"))

    def plain_stops_at(self, ahead: int, *, flow: bool) -> bool:
        ch = self.ch(ahead)
        if ch in BLANK:
            return True
        if ch == ":":
            follower = self.ch(ahead + 1)
            return follower in BLANK or (flow and follower in FLOW_INDICATORS)
        return flow and ch in ",?[]{}"

    def parse_plain(self, *, parent: int, flow: bool, multiline: bool) -> RawScalar:
        chunks: list[str] = []
        spaces: list[str] = []
        end = self.pos
        while self.ch() != "#":
            length = 0
            while not self.plain_stops_at(length, flow=flow):
                length += 1
            if length == 0:
                break
            chunks.extend(spaces)
            chunks.append(self.text[self.pos : self.pos + length])
            self.pos += length
            end = self.pos
            spaces = self.plain_spaces(multiline=multiline)
            if not spaces or (not flow and self.col() < parent + 1):
                break
        self.pos = end
        return RawScalar("".join(chunks), plain=True)

    def plain_spaces(self, *, multiline: bool) -> list[str]:
        """Whitespace inside a plain scalar, folded; [] when the scalar must end here."""
        start = self.pos
        self.skip_spaces()
        if self.ch() != "\n" or self.at_eof():
            return [self.text[start : self.pos]] if self.pos > start else []
        if not multiline:
            return []
        breaks = 0
        while self.ch() in " \t\n" and not self.at_eof():
            if self.ch() == "\n":
                breaks += 1
            self.pos += 1
            if self.text[self.pos - 1] == "\n" and self.at_doc_marker():
                return []
        if self.ch() == "#" or self.at_eof():
            return []
        return ["\n" * (breaks - 1) if breaks > 1 else " "]

    def parse_quoted(self) -> RawScalar:
        start = self.pos
        quote = self.ch()
        self.pos += 1
        chunks: list[str] = []
        while True:
            chunks.extend(self.quoted_non_spaces(quote))
            if self.ch() == quote:
                self.pos += 1
                return RawScalar("".join(chunks), plain=False)
            if self.at_eof():
                raise self.error("unterminated quoted string", start)
            chunks.extend(self.quoted_spaces())

    def quoted_non_spaces(self, quote: str) -> list[str]:
        chunks: list[str] = []
        while True:
            length = 0
            while self.ch(length) not in "'\"\\ \t\n" + EOF:
                length += 1
            chunks.append(self.text[self.pos : self.pos + length])
            self.pos += length
            ch = self.ch()
            if quote == "'" and ch == "'" and self.ch(1) == "'":
                chunks.append("'")
                self.pos += 2
            elif ch in "'\"\\" and ch != quote and not (quote == '"' and ch == "\\"):
                chunks.append(ch)
                self.pos += 1
            elif quote == '"' and ch == "\\":
                chunks.extend(self.escape())
            else:
                return chunks

    def escape(self) -> list[str]:
        self.pos += 1
        ch = self.ch()
        if ch in ESCAPE_REPLACEMENTS and not self.at_eof():
            self.pos += 1
            return [ESCAPE_REPLACEMENTS[ch]]
        if ch in ESCAPE_CODES:
            width = ESCAPE_CODES[ch]
            digits = self.text[self.pos + 1 : self.pos + 1 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"expected {width} hex digits after \\{ch}")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise self.error(f"escape \\{ch}{digits} is not a character")
            self.pos += 1 + width
            return [chr(code)]
        if ch == "\n" and not self.at_eof():
            self.pos += 1
            return self.quoted_breaks()
        raise self.error(f"unknown escape \\{ch}")

    def quoted_spaces(self) -> list[str]:
        start = self.pos
        self.skip_spaces()
        if self.ch() != "\n" or self.at_eof():
            return [self.text[start : self.pos]]
        self.pos += 1
        breaks = self.quoted_breaks()
        return breaks if breaks else [" "]

    def quoted_breaks(self) -> list[str]:
        breaks: list[str] = []
        while True:
            if self.at_doc_marker():
                raise self.error("document marker inside a quoted string")
            self.skip_spaces()
            if self.ch() != "\n" or self.at_eof():
                return breaks
            self.pos += 1
            breaks.append("\n")
