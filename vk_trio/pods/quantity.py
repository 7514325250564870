"""Kubernetes resource quantities ("500m", "16Gi", "1e3") as exact numbers.

A pod asks for CPU, memory, disk and GPUs as quantity strings, and the cloud offer we rent must
be at least that big. Floats would turn "0.1" CPU or "1.1Gi" into a value a hair below what the
user wrote, and a comparison with an offer could then pick a machine that is too small; so a
quantity is parsed into a ``Fraction``, exact for both the decimal and the binary suffixes.

The accepted language is the grammar documented on ``resource.Quantity`` in
k8s.io/apimachinery (pkg/api/resource/quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= <number> | <sign><number>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>   (an integer: "1e3", "1E-2")

(``n`` and ``u`` are not in the comment's grammar but Go's parser accepts them and the API
server writes them in canonical forms, so they are accepted here.) "1E" is one exa, "1E3" is a
thousand. The value then gets the two adjustments Go's ``ParseQuantity`` makes, so that a
number here equals ``Quantity.AsDec()`` of the API server: non-zero values are rounded away
from zero to a whole nano (10⁻⁹), and binary-suffixed magnitudes are capped at 2⁶³-1.

Deliberate differences from Go's parser, which is more lenient than its own grammar: a
quantity without any digit ("", ".", "+", "-") is rejected instead of read as zero, and an
exponent beyond ±``MAX_EXPONENT`` is rejected instead of wrapping around in an int32. The API
server stores quantities in canonical form, so none of these reach a pod we read from it.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

Quantity = str | int | float  # what kube/models.py decodes from resources.requests/limits

MAX_EXPONENT = 1000  # a guard: 1e1000000000 would be a billion-digit integer
MAX_DIGITS = 1000
MAX_GB = 1e15  # a petabyte of petabytes: beyond it a quantity is no size, only an overflow
_NANO = 10**9
_INT64_MAX = 2**63 - 1

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

# [0-9], never \d: \d also matches other scripts' digits (Arabic-Indic...), which Go rejects.
_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)"
    r"(?:(?P<int>[0-9]+)(?:\.(?P<frac1>[0-9]*))?|\.(?P<frac2>[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|[eE](?P<exp>[+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))"
)


def parse_quantity(value: Quantity) -> Fraction:
    """The exact value of a Kubernetes quantity.

    Args:
        value: a quantity string; an ``int`` (or a finite ``float``) is read as its decimal
            text, as Kubernetes does for a JSON number.

    Raises:
        ValueError: the value is not a quantity; the message quotes it and says why.
    """
    text = _text(value)
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid quantity {_quote(text)}: {_why(text)}")
    digits = match["int"] or ""
    fraction = match["frac1"] or match["frac2"] or ""
    if len(digits) + len(fraction) > MAX_DIGITS:
        raise ValueError(f"invalid quantity {_quote(text)}: more than {MAX_DIGITS} digits")
    number = Fraction(int(digits + fraction or "0"), 10 ** len(fraction))
    if match["binary"] is not None:
        number *= 2 ** _BINARY[match["binary"]]
        number = min(number, Fraction(_INT64_MAX))
    elif match["exp"] is not None:
        exponent = int(match["exp"])
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(
                f"invalid quantity {_quote(text)}: exponent {exponent} is beyond ±{MAX_EXPONENT}"
            )
        number *= Fraction(10) ** exponent
    else:
        number *= Fraction(10) ** _DECIMAL[match["decimal"]]
    number = Fraction(math.ceil(number * _NANO), _NANO)  # Go rounds up to a whole nano
    return -number if match["sign"] == "-" else number


def cpu_millis(value: Quantity) -> int:
    """CPU in millicores, rounded up ("1.5" → 1500, "100m" → 100, "0.0001" → 1)."""
    return math.ceil(_amount(value) * 1000)


def bytes_(value: Quantity) -> int:
    """A memory or storage quantity in bytes, rounded up ("1Ki" → 1024, "1k" → 1000)."""
    return math.ceil(_amount(value))


def mb(value: Quantity) -> int:
    """Decimal megabytes (10⁶ bytes), rounded up: the unit of ``Requirements.memory_mb``.

    Decimal because the marketplaces' own filters are ("cpu_ram" in MB = GB x 1000); rounding up
    because an instance with less memory than asked for is the one mistake we must not make.
    """
    return math.ceil(_amount(value) / 10**6)


def gb(value: Quantity) -> float:
    """Decimal gigabytes (10⁹ bytes), the unit of ``Requirements.disk_gb``; a provider rounds
    up to its own granularity ("16Gi" → 17.179869184, "20G" → 20.0)."""
    amount = _amount(value) / 10**9
    if amount > MAX_GB:  # float() would overflow for "1e400", and no disk is this big
        raise ValueError(f"invalid quantity {_quote(_text(value))}: more than {MAX_GB:g} GB")
    return float(amount)


def _amount(value: Quantity) -> Fraction:
    """A quantity that must not be negative (a resource amount)."""
    number = parse_quantity(value)
    if number < 0:
        raise ValueError(
            f"invalid quantity {_quote(_text(value))}: a resource amount cannot be negative"
        )
    return number


def _text(value: Quantity) -> str:
    # ValueError even for a wrong type: a pod's quantity is data, and callers catch one error.
    if isinstance(value, bool):  # a bool is an int to Python, but never a quantity
        raise ValueError(f"invalid quantity {value!r}: a boolean is not a quantity")  # noqa: TRY004
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: not a finite number")
        return repr(value)  # shortest round-tripping text: "0.5", "1e-05", "1e+16"
    if isinstance(value, str):
        return value
    raise ValueError(f"invalid quantity {value!r}: expected a string or a number")


def _quote(text: str) -> str:
    """``text`` quoted for a message, shortened: an Event must stay readable."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _why(text: str) -> str:
    """A short reason for a string the grammar rejected, for a user reading an Event."""
    if not text:
        return "empty"
    if text != text.strip():
        return "leading or trailing whitespace"
    if not any("0" <= c <= "9" for c in text):
        return "no digits"
    tail = text.lstrip("+-0123456789.")
    if tail and tail[0] in "eE":
        return "an exponent must be an integer, as in 1e3 or 1E-2"
    return (
        "expected a number with an optional suffix "
        "(n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or an exponent like e3)"
    )
