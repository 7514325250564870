"""Bounded decoding: every building block returns a value or raises InvalidInput."""

from __future__ import annotations

import math

import msgspec
import pytest

from vk_trio import decoding
from vk_trio.errors import InvalidInput


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), ("17", 17), (17.0, 17), ("2147483647", 2**31 - 1)],
)
def test_integers_in_range_are_read(value: object, expected: int) -> None:
    assert decoding.integer(value, what="n") == expected


@pytest.mark.parametrize(
    "value",
    [
        "²",  # a digit to str.isdigit, not to int
        "٣",  # an Arabic-Indic digit: int() reads it, no cloud or kubelet writes it
        "1" * 5000,  # int() refuses more than 4,300 digits with a ValueError
        "2147483648",  # beyond int32
        -1,
        1.5,
        math.nan,
        math.inf,
        True,
        [1],
        "",
        " 1",
    ],
)
def test_what_is_not_an_integer_in_range_is_invalid_input(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^n: "):
        decoding.integer(value, what="n")


def test_negative_integers_only_where_allowed() -> None:
    assert decoding.integer("-5", what="n", low=-10) == -5
    with pytest.raises(InvalidInput):
        decoding.integer("-5", what="n")


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", math.nan, 1e400, "1e400"])
def test_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="price"):
        decoding.number(value, what="price", high=math.inf)


def test_numbers_are_range_checked_and_short() -> None:
    assert decoding.number("0.25", what="p") == 0.25
    assert decoding.number(3, what="p") == 3.0
    for bad in (-1, 1e16, "1" * 100, [0.5], "0.5x", 2**80, False):
        with pytest.raises(InvalidInput):
            decoding.number(bad, what="p")


def test_json_documents_are_bounded_in_size_depth_and_numbers() -> None:
    assert decoding.json_value(b'{"a": [1, 2]}', what="doc") == {"a": [1, 2]}
    cases = [
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"1" * 5000, "unexpected shape"),  # msgspec refuses integers beyond 64 bits
        (b"1e400", "unexpected shape"),
        (b"<html>", "not JSON"),
        (b" " * 2000 + b"{}", "larger than"),
    ]
    for document, why in cases:
        with pytest.raises(InvalidInput, match=why):
            decoding.json_value(document, what="doc", max_bytes=1000 if b" " in document else 10**7)


def test_typed_json_names_the_field() -> None:
    class Shape(msgspec.Struct):
        config: dict[str, str]

    with pytest.raises(InvalidInput, match=r"\$\.config"):
        decoding.json_typed(b'{"config": "x"}', Shape, what="manifest")


def test_base64_text_is_strict() -> None:
    assert decoding.base64_text("dTpw", what="auth") == "u:p"
    for bad, why in [("é", "non-ASCII"), ("!!!!", "base64"), ("/w==", "UTF-8")]:
        with pytest.raises(InvalidInput, match=why):
            decoding.base64_text(bad, what="auth")


def test_excerpts_are_short() -> None:
    assert decoding.excerpt("x" * 1000).endswith("...")
    assert len(decoding.excerpt("x" * 1000)) < 60
    assert decoding.excerpt("ok") == "'ok'"


def test_ascii_digits() -> None:
    assert decoding.ascii_digits("0123")
    for text in ("", "²", "\u0661", "1.5", "-1"):
        assert not decoding.ascii_digits(text)
