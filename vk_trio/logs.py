"""Logging for a daemon people read in terminals and machines read in JSON, with no secrets.

* ``setup_logging(level, fmt)``: text (one line per record, key=value context) or JSON lines.
* ``redact(value)``: register a secret (API key, token, Secret-derived env value); every log
  line is scrubbed of every registered secret before it is written, whatever code logged it.
* ``pod_logger(namespace, name, uid)``: a logger adapter that adds the pod's identity to every
  record, so one pod's story can be grepped out of a busy node.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[REDACTED]"
_MIN_SECRET_LEN = 4  # shorter values would scrub ordinary words
_secrets: set[str] = set()
_lock = threading.Lock()


def redact(*values: str | None) -> None:
    """Never print these values again, anywhere in our logs."""
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET_LEN:
                _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by [REDACTED]."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class _Formatter(logging.Formatter):
    def __init__(self, *, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        context: dict[str, Any] = getattr(record, "context", {}) or {}
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        if self.json_lines:
            payload = {
                "time": stamp.replace("+00:00", "Z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": message,
                **context,
            }
            return scrub(json.dumps(payload, default=str))
        extra = " ".join(f"{k}={v}" for k, v in context.items())
        line = f"{stamp[:23]} {record.levelname:<5} {record.name}: {message}"
        return scrub(f"{line} {extra}" if extra else line)


def setup_logging(level: str = "info", fmt: str = "text", *, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(json_lines=fmt == "json"))
    root = logging.getLogger("vk_trio")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel({"warn": "WARNING"}.get(level.lower(), level.upper()))


class ContextAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds fixed key=value context to every record (merged with a call's own ``context``)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(kwargs.pop("extra", {}) or {})
        context = {**(self.extra or {}), **kwargs.pop("context", {})}
        extra["context"] = context
        kwargs["extra"] = extra
        return msg, kwargs


def get_logger(name: str, **context: Any) -> ContextAdapter:
    return ContextAdapter(logging.getLogger(name), context)


def pod_logger(namespace: str, name: str, uid: str) -> ContextAdapter:
    return get_logger("vk_trio.pods", pod=f"{namespace}/{name}", uid=uid)
