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
