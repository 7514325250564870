"""Logs: text and JSON lines, pod-scoped context, and secrets never printed."""

from __future__ import annotations

import io
import json

from vk_trio.logs import (
    MAX_POD_SECRETS,
    MAX_SECRETS,
    REDACTED,
    forget_pod,
    get_logger,
    pod_logger,
    pod_secret_count,
    redact,
    redact_for_pod,
    scrub,
    setup_logging,
)


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


def test_a_pods_secrets_are_scrubbed_from_its_own_lines_only_and_dropped_with_it() -> None:
    out = io.StringIO()
    setup_logging("debug", "text", stream=out)
    redact_for_pod("uid-a", ["true", "s3cr3t-of-a"])
    pod_logger("ns", "a", "uid-a").warning("flag=true token=s3cr3t-of-a")
    pod_logger("ns", "b", "uid-b").warning("flag=true token=s3cr3t-of-a")
    get_logger("vk_trio.daemon").warning("node is true to its word")
    own, other, operator = out.getvalue().splitlines()
    assert "s3cr3t-of-a" not in own and "true" not in own.split("uid=")[0]
    assert "flag=true" in other  # a tenant's "true" never blanks out anyone else's line
    assert "true to its word" in operator
    forget_pod("uid-a")
    assert scrub("s3cr3t-of-a", pod_uid="uid-a") == "s3cr3t-of-a"


def test_pod_secrets_are_bounded_in_count_and_length() -> None:
    many = [f"value-{i:04d}" for i in range(1000)]
    redact_for_pod("uid-many", [*many, "x" * 100_000, "ab"])  # "ab": too short to hold
    try:
        assert pod_secret_count() >= 1
        assert scrub("ab", pod_uid="uid-many") == "ab"
        kept = sum(scrub(v, pod_uid="uid-many") == REDACTED for v in many)
        assert kept < MAX_POD_SECRETS
    finally:
        forget_pod("uid-many")


def test_short_operator_secrets_are_not_registered_and_the_registry_is_bounded() -> None:
    redact("admin")  # would blank out every "admin" in the operator's log
    assert scrub("admin logged in") == "admin logged in"
    for i in range(MAX_SECRETS + 50):
        redact(f"rotated-token-{i:06d}")
    assert scrub("rotated-token-000000") == "rotated-token-000000"  # the oldest were dropped
    assert scrub(f"rotated-token-{MAX_SECRETS + 49:06d}") == REDACTED
