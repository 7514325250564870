"""pods/quantity.py reads a resource quantity exactly as the Kubernetes API server does.

GOLDEN was produced by Go's own parser: k8s.io/apimachinery v0.37.1
``resource.ParseQuantity(s).AsDec().String()`` for each string (ERR = ParseQuantity failed), so
these expectations are Kubernetes' answers, not ours. The Hypothesis properties then cover the
grammar beyond the table.
"""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vk_trio.pods.quantity import (
    MAX_EXPONENT,
    bytes_,
    cpu_millis,
    gb,
    mb,
    parse_quantity,
)

GOLDEN = [
    ("0", "0"),
    ("500m", "0.500"),
    ("2", "2"),
    ("1.5", "1.5"),
    ("16Gi", "17179869184"),
    ("16G", "16000000000"),
    ("1e3", "1000"),
    ("1E3", "1000"),
    ("1e-3", "0.001"),
    ("1E+2", "100"),
    ("128974848", "128974848"),
    ("129M", "129000000"),
    ("123Mi", "128974848"),
    ("0.5Gi", "536870912"),
    ("1.5Ki", "1536"),
    (".5", "0.5"),
    ("5.", "5"),
    ("1.G", "1000000000"),
    ("+7", "7"),
    ("-7", "-7"),
    ("-1.5Gi", "-1610612736"),
    ("100n", "0.000000100"),
    ("250u", "0.000250"),
    ("1n", "0.000000001"),
    ("0.1n", "0.000000001"),
    ("1.0000000001", "1.000000001"),
    ("1k", "1000"),
    ("1M", "1000000"),
    ("1Mi", "1048576"),
    ("1E", "1000000000000000000"),
    ("1Ei", "1152921504606846976"),
    ("8Ei", "9223372036854775807"),
    ("9E", "9000000000000000000"),
    ("007", "7"),
    ("0.000", "0"),
    ("1e0", "1"),
    ("12e-12", "0.000000001"),
    ("1.5e3", "1500"),
]

GO_REJECTS = [
    "1K", "1e", "1ee3", "1e3e", "1Ki3", "1 ", " 1", "1.5.2", "1e1.5", "1mi", "1KI", "1g",
    "++1", "1-", "1i", "0x10", "1_000", "1,5", "Inf", "NaN",
]  # fmt: skip

# Go reads these as zero or wraps the exponent around an int32; we refuse them (module docstring).
WE_ALSO_REJECT = ["", ".", "+", "-", "1e4294967296", f"1e{MAX_EXPONENT + 1}", "٣"]


@pytest.mark.parametrize(("text", "go_value"), GOLDEN)
def test_parse_quantity_agrees_with_the_api_server(text: str, go_value: str) -> None:
    assert parse_quantity(text) == Fraction(Decimal(go_value))


@pytest.mark.parametrize("text", GO_REJECTS + WE_ALSO_REJECT)
def test_parse_quantity_rejects_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


def test_invalid_quantity_message_says_why() -> None:
    with pytest.raises(ValueError, match="exponent must be an integer"):
        parse_quantity("1e1.5")
    with pytest.raises(ValueError, match="no digits"):
        parse_quantity("Gi")
    with pytest.raises(ValueError, match="whitespace"):
        parse_quantity(" 1")
    with pytest.raises(ValueError, match=r"'1{40}'\.\.\.: more than 1000 digits"):
        parse_quantity("1" * 1001)


def test_numbers_are_read_as_their_decimal_text() -> None:
    assert parse_quantity(3) == 3
    assert parse_quantity(0.5) == Fraction(1, 2)
    assert parse_quantity(1e-05) == Fraction(1, 100_000)
    for bad in (True, float("inf"), float("nan"), None, [1]):
        with pytest.raises(ValueError, match="invalid quantity"):
            parse_quantity(bad)  # type: ignore[arg-type]


def test_helpers_round_up_to_their_unit() -> None:
    assert cpu_millis("1.5") == 1500
    assert cpu_millis("100m") == 100
    assert cpu_millis("0.0001") == 1  # some CPU was asked for: never zero
    assert bytes_("1Ki") == 1024
    assert bytes_("1k") == 1000
    assert mb("16Gi") == 17180  # 17179.869184 MB, rounded up
    assert mb("16G") == 16000
    assert gb("20G") == 20.0
    assert gb("16Gi") == pytest.approx(17.179869184)


def test_helpers_reject_negative_amounts() -> None:
    for helper in (cpu_millis, bytes_, mb, gb):
        with pytest.raises(ValueError, match="cannot be negative"):
            helper("-1")


# --- properties -------------------------------------------------------------------------------

DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15}
BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}

digit_strings = st.text(alphabet="0123456789", max_size=12)


@st.composite
def grammar_quantities(draw: st.DrawFn) -> tuple[str, Fraction]:
    """A string of the quantity grammar and its value, computed independently with Decimal."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(digit_strings)
    frac = draw(digit_strings)
    dot = draw(st.booleans()) or not whole
    frac = frac if dot else ""
    assume(whole or frac)
    number = whole + ("." + frac if dot else "")
    kind = draw(st.sampled_from(["decimal", "binary", "exponent"]))
    magnitude = Fraction(Decimal((whole or "0") + "." + (frac or "0")))
    if kind == "decimal":
        suffix = draw(st.sampled_from(sorted(DECIMAL_SUFFIXES)))
        magnitude *= Fraction(10) ** DECIMAL_SUFFIXES[suffix]
    elif kind == "binary":
        suffix = draw(st.sampled_from(sorted(BINARY_SUFFIXES)))
        magnitude = min(magnitude * 2 ** BINARY_SUFFIXES[suffix], Fraction(2**63 - 1))
    else:
        exponent = draw(st.integers(-30, 30))
        e = draw(st.sampled_from("eE"))
        suffix = f"{e}{draw(st.sampled_from(['', '+'])) if exponent >= 0 else ''}{exponent}"
        magnitude *= Fraction(10) ** exponent
    magnitude = Fraction(math.ceil(magnitude * 10**9), 10**9)
    return sign + number + suffix, -magnitude if sign == "-" else magnitude


@given(grammar_quantities())
def test_every_string_of_the_grammar_parses_to_its_value(case: tuple[str, Fraction]) -> None:
    text, value = case
    assert parse_quantity(text) == value


@given(st.text(max_size=30))
def test_parse_quantity_raises_nothing_but_value_error(text: str) -> None:
    try:
        value = parse_quantity(text)
    except ValueError:
        return
    assert (10**9) % value.denominator == 0  # always a whole number of nanos


@given(st.text(alphabet="0123456789.+-eEKMGTPinumk ", max_size=12))
def test_near_miss_strings_raise_nothing_but_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_quantity(text)


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_integers_round_trip(n: int) -> None:
    assert parse_quantity(str(n)) == n
    assert parse_quantity(n) == n


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_nano_values_round_trip_through_their_decimal_text(nanos: int) -> None:
    value = Fraction(nanos, 10**9)
    text = format(Decimal(nanos).scaleb(-9), "f")
    assert parse_quantity(text) == value
    assert parse_quantity(f"{nanos}n") == value


@given(st.integers(min_value=0, max_value=10**12))
def test_millicores_round_trip(millis: int) -> None:
    assert cpu_millis(f"{millis}m") == millis
    assert cpu_millis(format(Decimal(millis).scaleb(-3), "f")) == millis


@given(st.integers(min_value=0, max_value=2**20), st.sampled_from(["Ki", "Mi", "Gi", "Ti"]))
def test_binary_suffixes_are_powers_of_two(n: int, suffix: str) -> None:
    assert bytes_(f"{n}{suffix}") == n * 2 ** BINARY_SUFFIXES[suffix]


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_floats_are_read_as_their_shortest_text(x: float) -> None:
    exact = Fraction(Decimal(repr(x)))
    nanos = math.ceil(abs(exact) * 10**9)
    assert parse_quantity(x) == Fraction(nanos if exact >= 0 else -nanos, 10**9)
