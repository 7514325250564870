"""Where the ``Authorization`` header comes from: static tokens, token files, basic auth, and
exec plugins, behind one two-method protocol the HTTP client calls on every request.

Credentials change under a long-running daemon: projected service-account tokens rotate
(kubelet rewrites the file about hourly), exec plugins hand out tokens that expire. So a
token file is re-read at most every :data:`TOKEN_FILE_REREAD_PERIOD` seconds and an exec
credential is reused until shortly before its ``expirationTimestamp``; after a 401 the client
calls :meth:`TokenSource.invalidate` and the next request re-reads or re-runs at once.
Time is ``trio.current_time()``, so tests run all of this on a virtual clock.

No source ever puts a secret in its repr, in an exception message or in a log line.
"""

from __future__ import annotations

import base64
import logging
import ssl
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import trio

from vk_trio.errors import AuthError
from vk_trio.kube.auth_exec import ExecCredential, run_exec_plugin
from vk_trio.kube.auth_tls import load_client_certificate
from vk_trio.kube.kubeconfig_entries import ExecConfig
from vk_trio.logs import redact

__all__ = [
    "EXEC_REFRESH_MARGIN",
    "EXEC_RETRY_DELAY",
    "TOKEN_FILE_REREAD_PERIOD",
    "BasicAuthSource",
    "ExecCredentialSource",
    "FileTokenSource",
    "StaticTokenSource",
    "TokenSource",
]

log = logging.getLogger(__name__)

TOKEN_FILE_REREAD_PERIOD = 60.0
"""Seconds a token read from a file is trusted before the file is read again (client-go: 1 min)."""

EXEC_REFRESH_MARGIN = 30.0
"""Re-run an exec plugin this many seconds before its credential expires (at most 1/10 of
the credential's remaining life, so short-lived credentials are still used)."""

EXEC_RETRY_DELAY = 5.0
"""After a failed early refresh, seconds before the plugin is tried again."""


@runtime_checkable
class TokenSource(Protocol):
    """The value of the ``Authorization`` header, kept fresh."""

    async def authorization(self) -> str | None:
        """The full header value ("Bearer ...", "Basic ..."), or None to send none."""
        ...

    def invalidate(self) -> None:
        """The server said 401: forget the cached credential, re-read or re-run next time."""
        ...


class StaticTokenSource:
    """A bearer token written in the kubeconfig (``token:``)."""

    def __init__(self, token: str) -> None:
        redact(token)
        self._header = f"Bearer {token}"

    async def authorization(self) -> str:
        return self._header

    def invalidate(self) -> None:
        """Nothing to refresh; the next request fails again, as in kubectl."""

    def __repr__(self) -> str:
        return "StaticTokenSource(token=<redacted>)"


class BasicAuthSource:
    """``username``/``password`` from the kubeconfig, sent as HTTP basic auth."""

    def __init__(self, username: str, password: str) -> None:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        redact(password, pair)
        self._username = username
        self._header = f"Basic {pair}"

    async def authorization(self) -> str:
        return self._header

    def invalidate(self) -> None:
        """Nothing to refresh."""

    def __repr__(self) -> str:
        return f"BasicAuthSource(username={self._username!r}, password=<redacted>)"


class FileTokenSource:
    """A bearer token in a file that someone else rotates (tokenFile, service-account token).

    ``fallback`` is the kubeconfig's inline token, used when the file cannot be read and no
    token was read before (client-go does the same).
    """

    def __init__(
        self,
        path: Path,
        *,
        fallback: str | None = None,
        period: float = TOKEN_FILE_REREAD_PERIOD,
    ) -> None:
        self.path = path
        self._fallback = fallback
        self._period = period
        self._token: str | None = None
        self._read_at: float | None = None
        self._lock = trio.Lock()

    async def authorization(self) -> str:
        async with self._lock:
            now = trio.current_time()
            if self._read_at is None or now - self._read_at >= self._period:
                await self._reread()
                self._read_at = now
        assert self._token is not None
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._read_at = None

    async def _reread(self) -> None:
        try:
            token = await trio.to_thread.run_sync(self._read)
        except AuthError:
            if self._token is None and self._fallback is None:
                raise
            log.warning("cannot re-read token file %s; keeping the previous token", self.path)
            self._token = self._token or self._fallback
            return
        redact(token)
        self._token = token

    def _read(self) -> str:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read token file {self.path}: {exc}") from None
        if not token:
            raise AuthError(f"token file {self.path} is empty")
        return token

    def __repr__(self) -> str:
        return f"FileTokenSource(path={str(self.path)!r}, token=<redacted>)"


class ExecCredentialSource:
    """Credentials from an exec plugin, cached until shortly before they expire.

    When the plugin returns a client certificate, every SSLContext handed to
    :meth:`bind_ssl_context` gets the new certificate and key loaded when the plugin is re-run,
    so new TLS connections use them; connections already open keep the old certificate until
    they close (the client should drop its pool after a 401).
    """

    def __init__(
        self,
        config: ExecConfig,
        *,
        env: Mapping[str, str],
        cluster_info: Mapping[str, Any] | None,
    ) -> None:
        self.config = config
        self._env = dict(env)
        self._cluster_info = cluster_info
        self._credential: ExecCredential | None = None
        self._refresh_at = 0.0
        self._lock = trio.Lock()
        self._contexts: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()

    async def credential(self) -> ExecCredential:
        """The cached credential, or a fresh one from the plugin."""
        async with self._lock:
            if self._credential is None or trio.current_time() >= self._refresh_at:
                await self._refresh()
            assert self._credential is not None
            return self._credential

    async def _refresh(self) -> None:
        try:
            fresh = await run_exec_plugin(
                self.config, env=self._env, cluster_info=self._cluster_info
            )
        except AuthError as exc:
            current = self._credential
            if current is None or current.expires_at is None:
                raise
            if current.expires_at <= datetime.now(UTC):
                raise
            # An early refresh failed but the credential still works: keep it, retry soon.
            log.warning("%s; using the current credential until it expires", exc)
            self._refresh_at = trio.current_time() + EXEC_RETRY_DELAY
            return
        self._store(fresh)

    async def authorization(self) -> str | None:
        token = (await self.credential()).token
        return f"Bearer {token}" if token else None

    def invalidate(self) -> None:
        self._credential = None

    def bind_ssl_context(self, context: ssl.SSLContext) -> None:
        """Keep ``context``'s client certificate in step with the plugin's."""
        self._contexts.add(context)

    def _store(self, fresh: ExecCredential) -> None:
        previous, self._credential = self._credential, fresh
        redact(fresh.token)
        self._refresh_at = float("inf")
        if fresh.expires_at is not None:
            remaining = (fresh.expires_at - datetime.now(UTC)).total_seconds()
            margin = min(EXEC_REFRESH_MARGIN, max(remaining, 0.0) / 10)
            self._refresh_at = trio.current_time() + remaining - margin
        cert, key = fresh.client_cert_pem, fresh.client_key_pem
        if cert and key and previous is not None and previous.client_cert_pem != cert:
            for context in list(self._contexts):
                load_client_certificate(context, cert_pem=cert, key_pem=key)

    def __repr__(self) -> str:
        return f"ExecCredentialSource({self.config!r}, credential={self._credential!r})"
