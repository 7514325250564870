"""The exit marker: only the wrapper's own, well-formed line counts; nothing in it can crash."""

from __future__ import annotations

import pytest

from vk_trio.providers import exit_marker
from vk_trio.providers.exit_marker import ExitMarker, parse

NONCE = "0123456789abcdef"


def test_the_wrappers_line_is_parsed() -> None:
    assert parse(f"vk-trio-exit nonce={NONCE} code=0", NONCE) == ExitMarker(code=0)
    assert parse(f"vk-trio-exit nonce={NONCE} code=255 at=1700000000", NONCE) == ExitMarker(
        code=255, at=1_700_000_000.0
    )
    assert parse(f"vk-trio-exit nonce={NONCE} run=3 code=1 at=", NONCE) == ExitMarker(code=1, run=3)
    assert parse(f"vk-trio-exit nonce={NONCE} code=7\r", NONCE) == ExitMarker(code=7)


@pytest.mark.parametrize(
    "line",
    [
        "vk-trio:exit-code=0",  # the old, guessable marker
        "vk-trio-exit nonce=ffffffffffffffff code=0",  # another attempt's (or a forger's) nonce
        f"echo vk-trio-exit nonce={NONCE} code=0",  # not on its own line
        f"vk-trio-exit nonce={NONCE} code=0 trailing words",
        f" vk-trio-exit nonce={NONCE} code=0",
        f"vk-trio-exit nonce={NONCE} code=256",  # no shell's $? is that
        f"vk-trio-exit nonce={NONCE} code={'9' * 5000}",
        f"vk-trio-exit nonce={NONCE} code=1 at={'9' * 5000}",
        f"vk-trio-exit nonce={NONCE} code=1 at=999999999999",  # past the year 9999
        f"vk-trio-exit nonce={NONCE} code=-1",
        f"vk-trio-exit nonce={NONCE} code=\u0661",  # a non-ASCII digit
        f"vk-trio-exit nonce={NONCE.upper()} code=0",
        "",
    ],
)
def test_anything_else_is_not_a_marker(line: str) -> None:
    assert parse(line, NONCE) is None


def test_an_empty_nonce_matches_nothing() -> None:
    assert parse("vk-trio-exit nonce= code=0", "") is None


def test_the_last_marker_of_a_text_wins_and_all_are_listed() -> None:
    text = (
        f"hello\nvk-trio-exit nonce={NONCE} run=0 code=1 at=10\n"
        f"vk-trio-exit nonce=ffffffffffffffff code=9\nvk-trio-exit nonce={NONCE} run=1 code=2\n"
    )
    assert exit_marker.last_in(text, NONCE) == ExitMarker(code=2, run=1)
    assert [m.code for m in exit_marker.all_in(text, NONCE)] == [1, 2]
    assert exit_marker.last_in("nothing here", NONCE) is None


def test_the_echo_statement_prints_a_line_parse_accepts() -> None:
    nonce = exit_marker.new_nonce()
    assert len(nonce) == 16 and nonce != exit_marker.new_nonce()
    statement = exit_marker.echo(nonce, code="3", run="0", at="12")
    printed = statement.removeprefix('echo "').removesuffix('"')
    assert parse(printed, nonce) == ExitMarker(code=3, run=0, at=12.0)
    assert exit_marker.nonce_in(f"sh -c '{statement}'") == nonce
    assert exit_marker.nonce_in("no wrapper") is None


def test_a_line_in_the_wrappers_shape_is_recognised_whatever_its_nonce() -> None:
    nonce = exit_marker.new_nonce()
    line = exit_marker.echo(nonce, code="7", at="1700000000")[len('echo "') : -1]
    assert exit_marker.looks_like(line) and exit_marker.looks_like(line + "\r")
    assert not exit_marker.looks_like("vk-trio-exit nonce=xyz code=0")
    assert not exit_marker.looks_like("said: " + line)
    assert not exit_marker.looks_like(line + " " + "9" * 300)
