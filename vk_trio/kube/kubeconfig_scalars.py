"""What a YAML scalar in a kubeconfig means: plain-scalar resolution, tags and escapes.

Split from :mod:`vk_trio.kube.kubeconfig_yaml` so the structural parser stays readable. The
rules mirror PyYAML's ``SafeLoader`` (YAML 1.1: ``yes``/``on`` are booleans, ``0755`` is octal,
``1:20`` is sexagesimal), because that is the dialect our tests compare against and the one
``kubectl`` (go-yaml v2) is closest to. One deliberate difference: timestamps stay strings,
since no kubeconfig field is a date and a string is what every consumer expects.

Functions here raise :class:`ValueError` with a short reason; the parser adds file and line.
"""

from __future__ import annotations

import re

__all__ = ["ESCAPE_CODES", "ESCAPE_REPLACEMENTS", "construct_tagged", "resolve_plain"]

_BOOL_RE = re.compile(
    r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+
        |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_TRUE_WORDS = frozenset({"yes", "true", "on"})
_FALSE_WORDS = frozenset({"no", "false", "off"})

ESCAPE_REPLACEMENTS: dict[str, str] = {
    "0": "\0",
    "a": "\x07",
    "b": "\x08",
    "t": "\x09",
    "\t": "\x09",
    "n": "\x0a",
    "v": "\x0b",
    "f": "\x0c",
    "r": "\x0d",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
"""Single-character escapes of double-quoted scalars."""

ESCAPE_CODES: dict[str, int] = {"x": 2, "u": 4, "U": 8}
"""Escapes followed by that many hex digits."""

Scalar = str | int | float | bool | None
MAX_INT_BITS = 256  # far beyond any setting; a 20,000-bit int would break str() later on


def resolve_plain(text: str) -> Scalar:
    """The value of an untagged plain scalar (``true`` → True, ``12`` → 12, ``~`` → None)."""
    if _NULL_RE.match(text):
        return None
    if text == "<<":
        raise ValueError("merge keys (<<) are not supported in a kubeconfig")
    if _BOOL_RE.match(text):
        return text.lower() in _TRUE_WORDS
    if _INT_RE.match(text):
        return _construct_int(text)
    if _FLOAT_RE.match(text):
        return _construct_float(text)
    return text


def construct_tagged(text: str, *, tag: str) -> Scalar:
    """The value of a scalar carrying one of the standard ``!!`` tags."""
    if tag == "str":
        return text
    if tag == "null":
        return None
    if tag == "bool":
        word = text.lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
        raise ValueError(f"!!bool scalar {text!r} is not a boolean")
    if tag == "int":
        return _construct_int(text)
    if tag == "float":
        return _construct_float(text)
    raise ValueError(f"unsupported tag !!{tag}")


def _split_sign(text: str) -> tuple[int, str]:
    if not text:
        raise ValueError("empty number")
    sign = -1 if text[0] == "-" else 1
    return sign, text[1:] if text[0] in "+-" else text


def _sexagesimal(parts: list[str], *, number: type[int] | type[float]) -> int | float:
    value: int | float = 0
    base = 1
    for part in reversed(parts):
        value += number(part) * base
        base *= 60
    return value


def _construct_int(text: str) -> int:
    sign, digits = _split_sign(text.replace("_", ""))
    try:
        if digits == "0":
            return 0
        if digits.startswith("0b"):
            value = int(digits[2:], 2)
        elif digits.startswith("0x"):
            value = int(digits[2:], 16)
        elif digits.startswith("0"):
            value = int(digits, 8)
        elif ":" in digits:
            value = int(_sexagesimal(digits.split(":"), number=int))
        else:
            value = int(digits)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an integer") from None
    if value.bit_length() > MAX_INT_BITS:
        raise ValueError(f"{text[:40]!r}... is an integer of more than {MAX_INT_BITS} bits")
    return sign * value


def _construct_float(text: str) -> float:
    sign, digits = _split_sign(text.replace("_", "").lower())
    try:
        if digits == ".inf":
            return sign * float("inf")
        if digits == ".nan":
            return float("nan")
        if ":" in digits:
            return sign * float(_sexagesimal(digits.split(":"), number=float))
        return sign * float(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
