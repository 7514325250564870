"""Kubernetes' two timestamp formats: Time (seconds) and MicroTime (exactly six digits).

msgspec writes a datetime without a fraction when its microseconds are zero, which MicroTime
fields (Lease renewTime, acquireTime) refuse, so those are always formatted here.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def kube_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(moment: datetime) -> str:
    """The kubelet's log timestamp: RFC 3339 with nine fraction digits, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def parse_kube_time(text: str) -> datetime:
    """An RFC 3339 time (any fraction length; ``Z`` or an offset); ValueError otherwise."""
    if len(text) > 64:
        raise ValueError("time too long")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(UTC)
