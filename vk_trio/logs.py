"""Logging for a daemon people read in terminals and machines read in JSON, with no secrets.

* ``setup_logging(level, fmt)``: text (one line per record, key=value context) or JSON lines.
* ``redact(value)``: register an operator secret (an API key, a kubeconfig token): every log
  line is scrubbed of it before it is written, whatever code logged it. Values shorter than
  ``MIN_SECRET_LEN`` are not registered (they would blank out ordinary words), and only the
  newest ``MAX_SECRETS`` are kept (tokens rotate every hour; the registry must not grow forever).
* ``redact_for_pod(uid, values)``: a pod's own secrets (its Secret-backed env values, its image
  pull password) are scrubbed from *that pod's* lines (records carrying its ``uid``) and its
  Events only, at most ``MAX_POD_SECRETS`` values of at most ``MAX_SECRET_LEN`` characters, and
  are forgotten with ``forget_pod(uid)`` when the pod goes. A tenant's secret ``"true"`` can
  therefore never blank a word out of the operator's log. This is a safety net: the code never
  passes a secret value to a log call or an Event in the first place (env values travel in
  ``InstanceSpec.env``, which has no repr; errors name variables, not values).
* ``pod_logger(namespace, name, uid)``: a logger adapter that adds the pod's identity to every
  record, so one pod's story can be grepped out of a busy node.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 8  # an operator secret shorter than this would scrub ordinary words
MAX_SECRETS = 256  # operator secrets remembered (the newest)
MIN_POD_SECRET_LEN = 4  # a pod's secrets only touch its own lines, so shorter ones are kept
MAX_POD_SECRETS = 64  # per pod
MAX_SECRET_LEN = 8192  # longer values are scrubbed by their first MAX_SECRET_LEN characters
_secrets: OrderedDict[str, None] = OrderedDict()
_pod_secrets: dict[str, tuple[str, ...]] = {}
_lock = threading.Lock()


def redact(*values: str | None) -> None:
    """Never print these values again, anywhere in our logs (operator secrets)."""
    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_LEN:
                _secrets.pop(value[:MAX_SECRET_LEN], None)
                _secrets[value[:MAX_SECRET_LEN]] = None
        while len(_secrets) > MAX_SECRETS:
            _secrets.popitem(last=False)


def redact_for_pod(uid: str, values: Iterable[str | None]) -> None:
    """The secrets of pod ``uid``: scrubbed from its log lines and Events until ``forget_pod``."""
    kept = {v[:MAX_SECRET_LEN] for v in values if v and len(v) >= MIN_POD_SECRET_LEN}
    chosen = sorted(kept, key=len, reverse=True)[:MAX_POD_SECRETS]
    with _lock:
        if chosen:
            _pod_secrets[uid] = tuple(chosen)
        else:
            _pod_secrets.pop(uid, None)


def forget_pod(uid: str) -> None:
    """The pod is gone: its secrets are no longer held (nor scrubbed)."""
    with _lock:
        _pod_secrets.pop(uid, None)


def pod_secret_count() -> int:
    """How many pods have secrets registered (bounded by the pods the node has)."""
    return len(_pod_secrets)


def scrub(text: str, *, pod_uid: str | None = None) -> str:
    """``text`` with every operator secret (and ``pod_uid``'s secrets) replaced by [REDACTED]."""
    own = _pod_secrets.get(pod_uid, ()) if pod_uid else ()
    if not _secrets and not own:
        return text
    for secret in sorted((*_secrets, *own), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class _Formatter(logging.Formatter):
    def __init__(self, *, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        context: dict[str, Any] = getattr(record, "context", {}) or {}
        uid = context.get("uid")
        uid = uid if isinstance(uid, str) else None
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
            return scrub(json.dumps(payload, default=str), pod_uid=uid)
        extra = " ".join(f"{k}={v}" for k, v in context.items())
        line = f"{stamp[:23]} {record.levelname:<5} {record.name}: {message}"
        return scrub(f"{line} {extra}" if extra else line, pod_uid=uid)


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
