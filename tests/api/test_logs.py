"""The log options as the kubelet validates and applies them: since, then tail, then the byte
limit over the rendered output; RFC 3339 nanosecond stamps; the wrapper's marker dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from vk_trio.api.logs import BadOptions, Options, _limited, parse_options, render, select
from vk_trio.httpserver import Request
from vk_trio.providers.base import LogLine

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LINES = [LogLine(text=f"line {i}", timestamp=NOW - timedelta(seconds=10 - i)) for i in range(10)]


def req(**query: str) -> Request:
    return Request(
        method="GET", path="/", query={k: [v] for k, v in query.items()}, headers={}, body=b""
    )


def test_options_are_parsed_and_bad_ones_refused() -> None:
    opts = parse_options(
        req(follow="true", tailLines="5", limitBytes="100", timestamps="1", sinceSeconds="30"),
        now=NOW,
    )
    assert opts == Options(
        follow=True,
        timestamps=True,
        tail_lines=5,
        limit_bytes=100,
        since=NOW - timedelta(seconds=30),
    )
    since = parse_options(req(sinceTime="2026-05-01T11:59:55.5Z"), now=NOW).since
    assert since == datetime(2026, 5, 1, 11, 59, 55, 500000, tzinfo=UTC)
    for bad in (
        {"tailLines": "-1"},
        {"limitBytes": "0"},
        {"sinceSeconds": "0"},
        {"tailLines": "9" * 40},
        {"sinceTime": "yesterday"},
        {"sinceSeconds": "5", "sinceTime": "2026-05-01T11:59:55Z"},
    ):
        with pytest.raises(BadOptions):
            parse_options(req(**bad), now=NOW)


def test_since_then_tail_and_unstamped_lines_pass_since() -> None:
    opts = Options(since=NOW - timedelta(seconds=5), tail_lines=3)
    assert [line.text for line in select(LINES, opts)] == ["line 7", "line 8", "line 9"]
    assert select(LINES, Options(tail_lines=0)) == []
    plain = [LogLine(text="no time")]
    assert select(plain, Options(since=NOW)) == plain


def test_timestamps_are_rfc3339_with_nanoseconds() -> None:
    line = LogLine(text="hi", timestamp=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))
    assert render(line, timestamps=True) == b"2026-05-01T12:00:00.123456000Z hi\n"
    assert render(LogLine(text="hi"), timestamps=True) == b"hi\n"


async def test_the_byte_limit_cuts_mid_line_and_markers_never_show() -> None:
    async def source() -> AsyncIterator[LogLine]:
        yield LogLine(text="abcdef")
        yield LogLine(text="vk-trio-exit nonce=0123456789abcdef code=0 at=1700000000")
        yield LogLine(text="vk-trio-exit nonce=fedcba9876543210 run=2 code=3")
        yield LogLine(text="ghijkl")

    out = b"".join([c async for c in _limited(source(), Options(limit_bytes=10))])
    assert out == b"abcdef\nghi"
    everything = b"".join([c async for c in _limited(source(), Options())])
    assert everything == b"abcdef\nghijkl\n"
