"""TLS for the server side on OpenSSL memory BIOs, because a client certificate that does not
verify must reach the application as "no identity", not end the handshake.

The kubelet asks for a client certificate without requiring one, verifies it in its x509
authenticator and, when it does not verify, goes on to the bearer token and then answers 401.
Python's ``ssl`` cannot do that: with ``CERT_OPTIONAL`` a certificate from another CA aborts
the handshake, so such a client sees a TLS alert, and one that carries a valid token as well is
refused outright. pyOpenSSL gives the verify callback: OpenSSL still checks the chain against
the client CA (with the intermediates the client sends, the ``ssl_client`` purpose, expiry),
the callback writes the verdict down and lets the handshake finish, and ``peer_subject()``
returns the certificate's subject only when every check passed.

``TlsServerStream`` is a ``trio.abc.Stream`` over any transport stream. One task may receive
while another sends (httpserver watches a streamed response's connection for the client going
away); the bytes OpenSSL produces are written to the transport under one lock, in order.
Renegotiation is off, so a send never has to read. Like ``trio.SSLStream(https_compatible=True)``
a transport EOF without close_notify reads as an ordinary end of stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from vk_trio.httpserver.messages import PeerSubject

BUFSIZE = 65536
RECORD = 16384  # one TLS record's worth of plaintext per SSL_write

T = TypeVar("T")


def _texts(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [
        value if isinstance(value, str) else value.decode("utf-8", "replace")
        for value in (attribute.value for attribute in name.get_attributes_for_oid(oid))
    ]


@dataclass
class _Verdict:
    """Written by the verify callback during the handshake (called only for a certificate the
    client sent, once per certificate of its chain)."""

    failed: bool = False


def _note_verdict(
    connection: SSL.Connection, _cert: crypto.X509, _errno: int, _depth: int, ok: int
) -> bool:
    verdict = connection.get_app_data()
    if isinstance(verdict, _Verdict) and not ok:
        verdict.failed = True
    return True  # finish the handshake either way: the verdict decides the identity


def ask_for_client_certificates(context: SSL.Context) -> None:
    """Make ``context`` request (not require) a client certificate, verified against its cert
    store, with the verdict kept for ``TlsServerStream.peer_subject`` instead of an abort."""
    context.set_verify(SSL.VERIFY_PEER, _note_verdict)


class TlsServerStream(trio.abc.Stream):
    """The server side of one TLS connection over ``transport``."""

    def __init__(self, transport: trio.abc.Stream, context: SSL.Context) -> None:
        self.transport = transport
        self._tls = SSL.Connection(context, None)  # None: memory BIOs, we move the bytes
        self._tls.set_accept_state()
        self._verdict = _Verdict()
        self._tls.set_app_data(self._verdict)
        self._write_lock = trio.Lock()
        self._receiving = False
        self._sending = False
        self._closed = False
        self._handshaken = False
        self._peer_closed = False

    # --- the handshake and the peer ----------------------------------------------------------

    async def do_handshake(self) -> None:
        await self._retry(self._handshake_step)
        self._handshaken = True

    def _handshake_step(self) -> bool:
        self._tls.do_handshake()  # returns None when done; WantReadError when it needs bytes
        return True

    def peer_subject(self) -> PeerSubject | None:
        """The verified client certificate's CN and O; None without one, or when it did not
        verify against the client CA."""
        if not self._handshaken or self._verdict.failed:
            return None
        cert = self._tls.get_peer_certificate(as_cryptography=True)  # None: none was sent
        if cert is None:
            return None
        common_names = _texts(cert.subject, NameOID.COMMON_NAME)
        return PeerSubject(
            common_name=common_names[0] if common_names else "",
            organizations=tuple(_texts(cert.subject, NameOID.ORGANIZATION_NAME)),
        )

    # --- trio.abc.Stream ---------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._check_open()
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self._receiving = True
        try:
            return await self._retry(self._read, max_bytes or BUFSIZE, at_eof=b"")
        finally:
            self._receiving = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        if self._sending:
            raise trio.BusyResourceError("another task is already sending")
        self._sending = True
        try:
            view = memoryview(data)
            while view:
                written = self._call(self._tls.send, view[:RECORD])
                if written is None:  # renegotiation is off: a send never waits for the peer
                    raise trio.BrokenResourceError("TLS wants to read in the middle of a send")
                view = view[written:]
                await self._flush()
            if not data:
                await trio.lowlevel.checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        self._check_open()
        if self._sending:
            raise trio.BusyResourceError("another task is already sending")
        await self.transport.wait_send_all_might_not_block()

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this TLS stream was closed")

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._handshaken:
                with trio.move_on_after(1):
                    with contextlib.suppress(SSL.Error):
                        self._tls.shutdown()  # our close_notify
                    await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await self.transport.aclose()

    # --- moving bytes between OpenSSL and the transport --------------------------------------

    def _read(self, max_bytes: int) -> bytes:
        try:
            return self._tls.recv(max_bytes)
        except SSL.ZeroReturnError:  # the peer's close_notify
            self._peer_closed = True
            return b""

    def _call(self, operation: Callable[..., T], *args: Any) -> T | None:
        """``operation`` once: its result, or None when OpenSSL needs bytes from the peer."""
        try:
            return operation(*args)
        except SSL.WantReadError:
            return None
        except SSL.Error as exc:  # includes SysCallError: the transport broke mid-record
            raise trio.BrokenResourceError(f"TLS: {exc}") from exc

    async def _retry(self, operation: Callable[..., T], *args: Any, at_eof: T | None = None) -> T:
        """Run ``operation`` until it completes, feeding it the peer's bytes; at the peer's EOF
        return ``at_eof`` (an end of stream), or without one raise BrokenResourceError."""
        while True:
            try:
                result = self._call(operation, *args)
            except trio.BrokenResourceError:
                await self._flush_alert()
                raise
            await self._flush()  # whatever OpenSSL wrote: handshake records, tickets
            if result is not None:
                return result
            if not self._peer_closed:
                incoming = await self.transport.receive_some(BUFSIZE)
                if incoming:
                    self._tls.bio_write(incoming)
                    continue
                self._peer_closed = True  # EOF without close_notify: an end all the same
            if at_eof is None:
                raise trio.BrokenResourceError("the peer closed the connection mid-handshake")
            return at_eof

    async def _flush_alert(self) -> None:
        """Best effort: the alert OpenSSL wrote on failing, so the client learns why."""
        with trio.move_on_after(1), contextlib.suppress(trio.BrokenResourceError, OSError):
            await self._flush()

    async def _flush(self) -> None:
        async with self._write_lock:
            while True:
                try:
                    outgoing = self._tls.bio_read(BUFSIZE)
                except SSL.WantReadError:
                    return
                if not outgoing:
                    return
                await self.transport.send_all(outgoing)
