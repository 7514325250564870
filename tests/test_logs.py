"""Logs: text and JSON lines, pod-scoped context, and secrets never printed."""

from __future__ import annotations

import io
import json

from vk_trio.logs import REDACTED, pod_logger, redact, setup_logging


def test_json_lines_carry_the_pods_identity() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    pod_logger("ml", "train-0", "uid-1").info("rented %s", "i-9")
    record = json.loads(out.getvalue())
    assert record["msg"] == "rented i-9"
    assert record["pod"] == "ml/train-0" and record["uid"] == "uid-1"
    assert record["level"] == "info"


def test_registered_secrets_are_scrubbed_from_every_line_and_format() -> None:
    redact("canary-secret-9f2c")
    for fmt in ("text", "json"):
        out = io.StringIO()
        setup_logging("debug", fmt, stream=out)
        pod_logger("ns", "p", "u").warning("key=%s in an error", "canary-secret-9f2c")
        assert "canary-secret-9f2c" not in out.getvalue()
        assert REDACTED in out.getvalue()


def test_the_level_filters_lines() -> None:
    out = io.StringIO()
    setup_logging("warn", "text", stream=out)
    pod_logger("ns", "p", "u").info("quiet")
    assert out.getvalue() == ""
