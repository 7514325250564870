"""Fuzz target for the kubeconfig YAML parser (vk_trio.kube.kubeconfig_yaml).

A kubeconfig is input we do not control: a hostile or broken file must end in a ConfigError
with a line number, never in another exception, a hang or a wrong value. Three properties:

* any text at all: the parser returns or raises ConfigError, nothing else;
* YAML-looking text built from the tokens kubeconfigs use: where both this parser and PyYAML
  accept it, they agree (timestamps excepted: we keep them as strings on purpose);
* documents with kubeconfig keys, dumped by PyYAML in every style, read back as PyYAML reads
  them (tests/kube/test_auth_yaml.py does the same with strictly kubeconfig-shaped ones).

Quick in ``make test``, long in ``make fuzz`` (fuzz/budget.py).
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from fuzz.budget import FUZZ
from vk_trio.errors import ConfigError
from vk_trio.kube.kubeconfig_yaml import parse_kubeconfig_text

_FIELDS = st.sampled_from(
    [
        "apiVersion",
        "clusters",
        "cluster",
        "server",
        "certificate-authority-data",
        "name",
        "users",
        "user",
        "token",
        "exec",
        "args",
        "env",
        "contexts",
        "context",
        "namespace",
        "current-context",
        "insecure-skip-tls-verify",
        "extensions",
        "preferences",
    ]
)
_CHARS = st.characters(
    codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"], exclude_characters="\ufeff\x85"
) | st.sampled_from("\n\t :#-'\"\\[]{},&*!|>%@`?")
_SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False),
    st.text(_CHARS, max_size=60),
)
_KEYS = _FIELDS | st.text(st.characters(codec="ascii", min_codepoint=32), min_size=1, max_size=30)
DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)
STYLES = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "default_style": st.sampled_from([None, "'", '"', "|", ">"]),
        "width": st.integers(min_value=5, max_value=200),
        "indent": st.integers(min_value=2, max_value=9),
        "explicit_start": st.booleans(),
        "explicit_end": st.booleans(),
        "allow_unicode": st.booleans(),
        "sort_keys": st.booleans(),
    }
)
_TOKENS = st.sampled_from(
    [
        "a",
        "key",
        "b c",
        "0",
        "1.5",
        "0x1F",
        "yes",
        "~",
        "null",
        "-",
        "- ",
        ":",
        ": ",
        "#",
        " # c",
        "'",
        "''",
        '"',
        '\\"',
        "\\n",
        "\\",
        "\\x41",
        "[",
        "]",
        "{",
        "}",
        ",",
        ", ",
        "|",
        "|-",
        "|+",
        "|2",
        ">",
        ">-",
        "!!str ",
        "!!int ",
        "&a ",
        "*a",
        "? ",
        "---",
        "...",
        "%YAML 1.1",
        "\t",
        " ",
        "  ",
        "\u00e9",
        "https://h:6443/x?y=z#f",
        "<<",
    ]
)
_LINES = st.tuples(
    st.sampled_from(["", " ", "  ", "    ", "- ", "  - "]), st.lists(_TOKENS, max_size=6)
)
YAMLISH = st.lists(_LINES, max_size=10).map(
    lambda lines: "\n".join(indent + "".join(tokens) for indent, tokens in lines)
)


def _has_dates(value: Any) -> bool:
    if isinstance(value, datetime.date):
        return True
    if isinstance(value, dict):
        return any(_has_dates(k) or _has_dates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_dates(item) for item in value)
    return False


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(k) or _has_nan(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nan(item) for item in value)
    return False


def _ours(text: str) -> Any:
    return parse_kubeconfig_text(text, source="fuzz")


@FUZZ
@given(text=st.text())
@example(text="current-context: 0x" + "f" * 5000)  # str() of that int raised ValueError later
@example(text="a: 0b" + "1" * 20000)
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        _ours(text)
    except ConfigError as exc:
        assert "fuzz, line " in str(exc)


@FUZZ
@given(text=YAMLISH)
def test_yaml_like_text_reads_as_pyyaml_reads_it_when_both_accept_it(text: str) -> None:
    try:
        ours = _ours(text)
    except ConfigError:
        event("refused by us")
        return
    try:
        theirs = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError):
        event("refused by PyYAML only")
        return
    if _has_dates(theirs) or _has_nan(theirs):
        return
    event("accepted by both")
    assert ours == theirs


@FUZZ
@given(document=DOCUMENTS, style=STYLES)
def test_dumped_documents_read_back_as_pyyaml_reads_them(document: Any, style: Any) -> None:
    text = yaml.safe_dump(document, **style)
    assert _ours(text) == yaml.safe_load(text)
