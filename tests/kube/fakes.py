"""Test doubles for the kube layer: static credentials and an in-memory transport script."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from vk_trio.kube.client import TokenSource


@dataclass
class StaticToken:
    token: str = "t0"
    invalidations: int = 0

    async def authorization(self) -> str | None:
        return f"Bearer {self.token}"

    def invalidate(self) -> None:
        self.invalidations += 1


@dataclass
class StaticAccess:
    server: str = "https://kube.test"
    tls_server_name: str | None = None
    token_source: TokenSource | None = field(default_factory=StaticToken)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context()
