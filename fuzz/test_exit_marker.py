"""Fuzz target for the exit-marker parser (vk_trio/providers/exit_marker.py).

Log lines are written by tenants' programs, so the parser meets anything: it must return a
marker or None, never raise, and what it returns must be in range. Run long with
``FUZZ_EXAMPLES=200000 .venv/bin/pytest fuzz/test_exit_marker.py`` (the default is a quick
pass). Self-contained on purpose: no imports from tests/.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vk_trio.providers.exit_marker import MAX_EPOCH, all_in, last_in, nonce_in, parse

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NONCE = "0123456789abcdef"
digits = st.text(alphabet="0123456789\u0661\u0662", max_size=40) | st.just("9" * 5000)
fields = st.builds(
    lambda nonce, run, code, at, tail: (
        f"vk-trio-exit nonce={nonce}"
        + (f" run={run}" if run is not None else "")
        + f" code={code}"
        + (f" at={at}" if at is not None else "")
        + tail
    ),
    st.sampled_from([NONCE, NONCE.upper(), "", "ffffffffffffffff", NONCE + "0"]),
    st.none() | digits,
    digits | st.sampled_from(["-1", "+1", "0x1", " 1"]),
    st.none() | digits,
    st.sampled_from(["", " ", "\r", "\n", " x", "\t", "\x00"]),
)
lines = fields | st.text(max_size=300)


def check(found: object) -> None:
    if found is None:
        return
    code = getattr(found, "code")  # noqa: B009 - checked without trusting the type
    at = getattr(found, "at")  # noqa: B009
    assert isinstance(code, int) and 0 <= code <= 255
    assert at is None or 0 <= at <= MAX_EPOCH


@FUZZ
@given(lines)
@example(f"vk-trio-exit nonce={NONCE} code={'9' * 5000}")
@example(f"vk-trio-exit nonce={NONCE} code=1 at={'9' * 5000}")
@example(f"vk-trio-exit nonce={NONCE} run={'9' * 5000} code=1")
def test_a_line_is_a_marker_in_range_or_none(line: str) -> None:
    check(parse(line, NONCE))


@FUZZ
@given(st.lists(lines, max_size=20))
def test_a_text_gives_markers_in_range(text_lines: list[str]) -> None:
    text = "\n".join(text_lines)
    check(last_in(text, NONCE))
    for marker in all_in(text, NONCE):
        check(marker)


@FUZZ
@given(st.text(max_size=500))
def test_a_nonce_read_back_from_any_script_is_16_hex_digits_or_none(script: str) -> None:
    found = nonce_in(script)
    assert found is None or (len(found) == 16 and set(found) <= set("0123456789abcdef"))
