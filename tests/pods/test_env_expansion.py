"""pods/expansion.expand: the kubelet's own test table, a reference model, and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vk_trio.pods.expansion import escape, expand, wrap

# The context and cases of kubernetes third_party/forked/golang/expansion/expand_test.go.
KUBELET_CONTEXT = {
    "VAR_A": "A",
    "VAR_B": "B",
    "VAR_C": "C",
    "VAR_REF": "$(VAR_A)",
    "VAR_EMPTY": "",
}
KUBELET_CASES = [
    ("$(VAR_A)", "A"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("$(VAR_A)-1", "A-1"),
    ("___$(VAR_B)___", "___B___"),
    ("___$(VAR_C)", "___C"),
    ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
    ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
    ("foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"),
    ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("$(VAR_REF)", "$(VAR_A)"),
    ("%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
    ("foo$(VAR_EMPTY)bar", "foobar"),
    ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
    ("f00__(VAR_A)__", "f00__(VAR_A)__"),
    ("$?_boo_$!", "$?_boo_$!"),
    ("$VAR_A", "$VAR_A"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),
    ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
    ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
    ("$$$$$$$(VAR_A)", "$$$A"),
    ("$VAR_A)", "$VAR_A)"),
    ("${VAR_A}", "${VAR_A}"),
    ("$(VAR_B)_______$(A", "B_______$(A"),
    ("$(VAR_C)_______$(", "C_______$("),
    ("$(VAR_A)foobarzab$", "Afoobarzab$"),
    ("foo-\\$(VAR_A", "foo-\\$(VAR_A"),
    ("--$($($($($--", "--$($($($($--"),
    ("$($($($($--foo$(", "$($($($($--foo$("),
    ("foo0--$($($($(", "foo0--$($($($("),
    ("$(foo$$var)", "$(foo$$var)"),
    ("\n", "\n"),
]


@pytest.mark.parametrize(("text", "expected"), KUBELET_CASES)
def test_expansion_matches_the_kubelets_own_test_table(text: str, expected: str) -> None:
    assert expand(text, KUBELET_CONTEXT.get) == expected


def test_a_dollar_before_a_non_ascii_character_is_kept_intact() -> None:
    # Go copies a single byte here and breaks the UTF-8 sequence; we keep the character.
    assert expand("$é $(X)", {"X": "ü"}.get) == "$é ü"


# --- a small reference model --------------------------------------------------------------------

_REFERENCE = re.compile(r"\$(?:\$|\(([^)]*)\))")


def reference_expand(text: str, defined: dict[str, str]) -> str:
    """The same rules as one regex: "$$" → "$", "$(NAME)" up to the first ")", else literal."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return defined.get(match[1], match[0])

    return _REFERENCE.sub(replace, text)


def reference_names(text: str) -> list[str]:
    return [m[1] for m in _REFERENCE.finditer(text) if m[0] != "$$"]


# Texts dense in the characters that matter, plus anything at all.
tricky = st.text(alphabet=st.sampled_from("$()AB_x\\\n é"), max_size=40)
texts = tricky | st.text(max_size=40)
names = st.text(alphabet=st.sampled_from("AB_x$( "), max_size=3)
contexts = st.dictionaries(names, st.text(alphabet=st.sampled_from("$()ab"), max_size=4))


@given(texts, contexts)
def test_expansion_agrees_with_the_reference_model(text: str, defined: dict[str, str]) -> None:
    assert expand(text, defined.get) == reference_expand(text, defined)


@given(texts, contexts)
def test_lookup_is_called_once_per_reference_in_order(text: str, defined: dict[str, str]) -> None:
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return defined.get(name)

    expand(text, lookup)
    assert asked == reference_names(text)


@given(st.text(), contexts)
def test_escaping_round_trips_whatever_is_defined(text: str, defined: dict[str, str]) -> None:
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return defined.get(name)

    assert expand(escape(text), lookup) == text
    assert asked == []


@given(st.text(alphabet=st.characters(blacklist_characters="$")), contexts)
def test_text_without_a_dollar_is_unchanged(text: str, defined: dict[str, str]) -> None:
    assert expand(text, defined.get) == text


@given(st.text(), st.text(alphabet=st.characters(blacklist_characters=")")), st.text(), st.text())
def test_a_defined_reference_between_escaped_text_is_replaced_exactly(
    before: str, name: str, value: str, after: str
) -> None:
    text = escape(before) + wrap(name) + escape(after)
    assert expand(text, {name: value}.get) == before + value + after
    nothing: dict[str, str] = {}
    assert expand(text, nothing.get) == before + wrap(name) + after


@given(st.text(max_size=2000))
def test_expansion_never_raises(text: str) -> None:
    expand(text, lambda name: None if len(name) % 2 else name)
