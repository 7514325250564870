"""Bounded, total decoding of input vk-trio does not control: numbers, text, JSON, base64.

Why this exists: a pod spec, a Secret, an image registry's answer, a cloud's answer and a log line
are written by someone else, and the Python that reads them raises whatever it likes
(``OverflowError`` for ``1e400``, ``ValueError`` for a 5,000-digit number or for ``int("²")``,
``RecursionError`` for 5,000 nested ``[``, ``TypeError`` for a list where a number was meant).
Each decoder built from these pieces either returns a value or raises ``InvalidInput``
(vk_trio/errors.py), whose message says what was read and why it was refused:

* numbers are range-checked, and non-finite ones (``NaN``, ``inf``) are refused;
* digits are ASCII digits (``str.isdigit`` also accepts ``²`` and other scripts' digits, which
  ``int`` then refuses);
* text has a length limit, and a JSON document a size limit and, through the interpreter's
  recursion limit, a depth limit;
* a value is never echoed whole in a message: ``excerpt`` quotes at most a few dozen characters.

PURE: no trio, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, TypeVar

import msgspec

from vk_trio.errors import InvalidInput

T = TypeVar("T")

INT32_MAX = 2**31 - 1  # Kubernetes status fields (restartCount, exitCode, ports) are int32
INT64_MAX = 2**63 - 1
MAX_DIGITS = 19  # enough for any int64; more is never a number we need
MAX_NUMBER_TEXT = 64  # "0.000...01" written out; a longer "number" is not one
MAX_JSON_BYTES = 4 * 2**20  # registry manifests and configs, cloud answers: 4 MiB


def excerpt(value: object, limit: int = 40) -> str:
    """``value`` quoted for a message, shortened to about ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    shown = repr(text[:limit]) if isinstance(value, str) else text[:limit]
    return shown + ("..." if len(text) > limit else "")


def ascii_digits(text: str) -> bool:
    """``text`` is one or more ASCII digits (``str.isdigit`` also says yes to ``"²"``)."""
    return bool(text) and text.isascii() and text.isdigit()


def integer(value: object, *, what: str, low: int = 0, high: int = INT32_MAX) -> int:
    """An integer in ``[low, high]`` from an int, an integral float or ASCII digit text.

    Accepts a leading ``-`` in text only when ``low`` is negative; at most ``MAX_DIGITS`` digits.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: {excerpt(value)} is a boolean, not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidInput(f"{what}: {excerpt(value)} is not a whole number")
        return _in_range(int(value), what=what, low=low, high=high)
    if isinstance(value, int):
        return _in_range(value, what=what, low=low, high=high)
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: {excerpt(value)} is not a number")
    digits = value[1:] if value.startswith("-") and low < 0 else value
    if not ascii_digits(digits) or len(digits) > MAX_DIGITS:
        raise InvalidInput(
            f"{what}: {excerpt(value)} is not a whole number of at most {MAX_DIGITS} ASCII digits"
        )
    return _in_range(int(value), what=what, low=low, high=high)


def _in_range(number: int, *, what: str, low: int, high: int) -> int:
    if not low <= number <= high:
        raise InvalidInput(f"{what}: {excerpt(number)} is outside [{low}, {high}]")
    return number


def number(value: object, *, what: str, low: float = 0.0, high: float = 1e15) -> float:
    """A finite number in ``[low, high]`` from an int, a float or short numeric text.

    ``NaN`` and the infinities are refused, as text (``"NaN"``, ``"inf"``) too.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: {excerpt(value)} is a boolean, not a number")
    if isinstance(value, int):
        if not -INT64_MAX <= value <= INT64_MAX:
            raise InvalidInput(f"{what}: {excerpt(value)} is outside [{low:g}, {high:g}]")
        result = float(value)
    elif isinstance(value, float):
        result = value
    elif isinstance(value, str) and value.isascii() and len(value) <= MAX_NUMBER_TEXT:
        try:
            result = float(value)
        except ValueError:
            raise InvalidInput(f"{what}: {excerpt(value)} is not a number") from None
    else:
        raise InvalidInput(f"{what}: {excerpt(value)} is not a number")
    if not math.isfinite(result):
        raise InvalidInput(f"{what}: {excerpt(value)} is not a finite number")
    if not low <= result <= high:
        raise InvalidInput(f"{what}: {excerpt(value)} is outside [{low:g}, {high:g}]")
    return result


def text(value: object, *, what: str, max_length: int = 4096) -> str:
    """A string of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: {excerpt(value)} is not text")
    if len(value) > max_length:
        raise InvalidInput(f"{what}: longer than {max_length} characters ({excerpt(value)})")
    return value


def json_value(data: bytes | str, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON document as Python values, or ``InvalidInput`` (too big, too deep, malformed;
    integers beyond 64 bits and numbers beyond a float's range are refused by msgspec)."""
    return json_typed(data, Any, what=what, max_bytes=max_bytes)


def json_typed(
    data: bytes | str, kind: type[T] | Any, *, what: str, max_bytes: int = MAX_JSON_BYTES
) -> T:
    """A JSON document decoded as ``kind`` (a msgspec type), or ``InvalidInput``."""
    if len(data) > max_bytes:
        raise InvalidInput(f"{what}: larger than {max_bytes} bytes")
    try:
        result: T = msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{what}: unexpected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"{what}: not JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{what}: nested too deeply") from None
    return result


def convert(obj: object, kind: type[T] | Any, *, what: str, strict: bool = True) -> T:
    """``msgspec.convert`` whose failures are ``InvalidInput``."""
    try:
        result: T = msgspec.convert(obj, kind, strict=strict)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{what}: unexpected shape: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{what}: nested too deeply") from None
    return result


def base64_text(value: str, *, what: str, max_bytes: int = 2**20) -> str:
    """Standard base64 of UTF-8 text (a Secret's ``data``, a docker ``auth``), decoded."""
    if not isinstance(value, str) or not value.isascii():
        raise InvalidInput(f"{what}: not base64 (non-ASCII characters)")
    if len(value) > max_bytes * 4 // 3 + 4:
        raise InvalidInput(f"{what}: larger than {max_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True).decode()
    except binascii.Error:
        raise InvalidInput(f"{what}: not valid base64") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what}: not UTF-8 text") from None
