"""The kubeconfig YAML parser reads what PyYAML writes, in every style, and refuses the rest."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vk_trio.errors import ConfigError
from vk_trio.kube.kubeconfig_yaml import parse_kubeconfig_text

# Characters PyYAML writes back as they were: no surrogates, no control characters but tab
# and newline, and none of the exotic line breaks (NEL, LS, PS) that YAML folds specially.
_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=["Cs", "Cc", "Zl", "Zp"],
    exclude_characters="\ufeff\x85",
) | st.sampled_from("\n\t  :#-'\"\\[]{},&*!|>%@`?")
TEXT = st.text(_CHARS, max_size=40)
KEYS = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]),
    min_size=1,
    max_size=20,
).filter(lambda key: "\ufeff" not in key and "\x85" not in key)
BASE64 = st.binary(max_size=120).map(lambda data: __import__("base64").b64encode(data).decode())
SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    TEXT,
    st.sampled_from(["yes", "no", "on", "null", "~", "0755", "1:20", "-", "- a", "a: b", "#x"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
NAMES = st.text(st.sampled_from("abcxyz-._:@/ 0123"), min_size=1, max_size=12)


def _named(kind: str, body: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.lists(
        st.fixed_dictionaries({"name": NAMES, kind: body}),
        max_size=3,
        unique_by=lambda e: e["name"],
    )


CLUSTER = st.fixed_dictionaries(
    {"server": st.sampled_from(["https://127.0.0.1:6443", "https://[::1]:443/", "http://k"])},
    optional={
        "certificate-authority-data": BASE64,
        "certificate-authority": TEXT,
        "insecure-skip-tls-verify": st.booleans(),
        "tls-server-name": NAMES,
        "proxy-url": st.just("socks5://localhost:1080"),
        "extensions": _named("extension", st.dictionaries(KEYS, VALUES, max_size=3)),
    },
)
USER = st.fixed_dictionaries(
    {},
    optional={
        "token": TEXT,
        "tokenFile": TEXT,
        "client-certificate-data": BASE64,
        "client-key-data": BASE64,
        "username": TEXT,
        "password": TEXT,
        "exec": st.fixed_dictionaries(
            {"apiVersion": st.just("client.authentication.k8s.io/v1"), "command": TEXT},
            optional={
                "args": st.lists(TEXT, max_size=4),
                "env": st.lists(st.fixed_dictionaries({"name": NAMES, "value": TEXT}), max_size=2),
                "provideClusterInfo": st.booleans(),
                "interactiveMode": st.sampled_from(["Never", "IfAvailable"]),
            },
        ),
    },
)
CONTEXT = st.fixed_dictionaries({"cluster": NAMES}, optional={"user": NAMES, "namespace": NAMES})
KUBECONFIGS = st.fixed_dictionaries(
    {"apiVersion": st.just("v1"), "kind": st.just("Config")},
    optional={
        "clusters": _named("cluster", CLUSTER),
        "users": _named("user", USER),
        "contexts": _named("context", CONTEXT),
        "current-context": NAMES,
        "preferences": st.just({}),
        "extensions": st.lists(VALUES, max_size=2),
    },
)
STYLES = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "default_style": st.sampled_from([None, "'", '"', "|", ">"]),
        "width": st.sampled_from([10, 40, 80, 10_000]),
        "indent": st.sampled_from([2, 3, 4, 8]),
        "explicit_start": st.booleans(),
        "explicit_end": st.booleans(),
        "allow_unicode": st.booleans(),
        "sort_keys": st.booleans(),
        "version": st.sampled_from([None, (1, 1)]),
    }
)


def parse(text: str) -> Any:
    return parse_kubeconfig_text(text, source="/k/config")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(document=KUBECONFIGS, style=STYLES)
def test_parser_reads_kubeconfigs_as_pyyaml_dumps_them_in_any_style(
    document: dict[str, Any], style: dict[str, Any]
) -> None:
    text = yaml.safe_dump(document, **style)
    # PyYAML's reader is the oracle, not the document: its emitter has round-trip bugs of
    # its own (a wrapped double-quoted "\\" before an escaped space, for one).
    assert parse(text) == yaml.safe_load(text)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES, style=STYLES)
def test_parser_reads_any_nested_value_pyyaml_dumps(value: Any, style: dict[str, Any]) -> None:
    text = yaml.safe_dump(value, **style)
    assert parse(text) == yaml.safe_load(text)


@given(document=KUBECONFIGS, indent=st.sampled_from([None, 2]))
def test_parser_reads_json_kubeconfigs(document: dict[str, Any], indent: int | None) -> None:
    finite = json.loads(json.dumps(document), parse_constant=lambda _: math.nan)
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    if finite == document:
        assert parse(text) == document


def test_parser_reads_a_typical_kubectl_written_kubeconfig() -> None:
    text = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://127.0.0.1:6443
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind   # trailing comment
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args: ["token", '--cluster', "a b"]
      command: aws
      env: null
      provideClusterInfo: false
"""
    config = parse(text)
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["users"][0]["user"]["exec"]["args"] == ["token", "--cluster", "a b"]
    assert config["preferences"] == {}
    assert config["users"][0]["user"]["exec"]["env"] is None


def test_literal_block_scalars_keep_pem_line_breaks() -> None:
    text = "data: |\n  -----BEGIN X-----\n  abc\n  -----END X-----\nnext: 1\n"
    assert parse(text) == {"data": "-----BEGIN X-----\nabc\n-----END X-----\n", "next": 1}


def test_crlf_line_endings_and_a_byte_order_mark_are_accepted() -> None:
    assert parse("\ufeffa: b\r\nc:\r\n- d\r\n") == {"a": "b", "c": ["d"]}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: b\nc: &anchor d\n", 2, "anchors"),
        ("a: *alias\n", 1, "anchors"),
        ("a: b\na: c\n", 2, "duplicate key"),
        ("a: b\n---\nc: d\n", 2, "one YAML document"),
        ("a:\n\tb: c\n", 2, "tabs"),
        ("a: b: c\n", 1, "mapping values"),
        ("a: 'unterminated\n", 1, "unterminated"),
        ("a: [b, c\n", 1, "unterminated"),
        ("a: !python/object x\n", 1, "unsupported tag"),
        ("? complex\n: key\n", 1, "complex mapping keys"),
        ("<<: {a: b}\n", 1, "merge keys"),
        ("a: b\n  c: d\n", 2, "mapping values"),
        ("a:\n  b: c\n d: e\n", 3, "unexpected indentation"),
        ('a: "bad \\q escape"\n', 1, "unknown escape"),
        ("a: b\x07\n", 1, "not allowed"),
        ("[" * 100 + "]" * 100, 1, "nesting"),
        ("%TAG ! tag:x,2000:\n---\na: b\n", 1, "unsupported directive"),
        ("a: |0\n  x\n", 1, "indentation indicator"),
    ],
)
def test_parser_refuses_what_it_does_not_support_naming_file_and_line(
    text: str, line: int, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert f"/k/config, line {line}:" in str(caught.value)
    assert reason in str(caught.value)


def test_timestamps_stay_strings_unlike_pyyaml() -> None:
    assert parse("expiry: 2030-01-01T00:00:00Z\n") == {"expiry": "2030-01-01T00:00:00Z"}


@pytest.mark.parametrize("number", ["0x" + "f" * 5000, "0b" + "1" * 20000, "1" * 5000])
def test_an_integer_of_thousands_of_digits_is_a_config_error_not_a_crash(number: str) -> None:
    # 0x + 5,000 digits parsed, then broke str() with a ValueError wherever it was shown
    with pytest.raises(ConfigError, match="line 1"):
        parse_kubeconfig_text(f"current-context: {number}", source="kubeconfig")
