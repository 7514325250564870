"""The TLS context for the API server, built from kubeconfig or in-cluster material.

Two things the stdlib does not do for us:

* ``load_cert_chain`` takes only paths, but kubeconfigs usually carry the client certificate
  and key inline. We hand OpenSSL an anonymous in-memory file (Linux ``memfd_create``, read
  through ``/proc/self/fd/N``), or else a 0600 temp file that is removed as soon as it is
  loaded. The key never rests on disk under a name.
* kubectl's ``tls-server-name`` verifies the server certificate against a name other than the
  host it dials (an API server reached by IP or through a tunnel). Python checks the name the
  client passes as ``server_hostname``, so the context returned here *pins* it: every
  ``wrap_bio``/``wrap_socket`` uses ``tls-server-name`` for SNI and hostname verification,
  whatever the HTTP client passes. A client that also sends the httpx ``sni_hostname``
  extension with the same value gets the same result; it does not need to.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Iterator

from vk_trio.errors import ConfigError

__all__ = ["PinnedNameContext", "build_ssl_context", "load_client_certificate"]

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----"
)


class PinnedNameContext(ssl.SSLContext):
    """An SSLContext that verifies (and sends SNI for) ``pinned_server_name`` when it is set."""

    pinned_server_name: str | None = None

    def wrap_socket(  # noqa: PLR0917 (the stdlib's signature)
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self._name(server_side, server_hostname),
            session=session,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=self._name(server_side, server_hostname),
            session=session,
        )

    def _name(self, server_side: bool, asked: str | bytes | None) -> str | bytes | None:
        return asked if server_side or not self.pinned_server_name else self.pinned_server_name


def build_ssl_context(
    *,
    ca_pem: bytes | None,
    insecure_skip_tls_verify: bool,
    tls_server_name: str | None,
    client_cert_pem: bytes | None,
    client_key_pem: bytes | None,
) -> PinnedNameContext:
    """A client context: our CA only (or the system store), optional client certificate."""
    context = PinnedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.pinned_server_name = tls_server_name
    if insecure_skip_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_pem is not None:
        _load_ca(context, ca_pem)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if client_cert_pem is not None and client_key_pem is not None:
        load_client_certificate(context, cert_pem=client_cert_pem, key_pem=client_key_pem)
    return context


def _load_ca(context: ssl.SSLContext, ca_pem: bytes) -> None:
    blocks = _PEM_CERTIFICATE.findall(ca_pem)  # like Go, ignore text around the PEM blocks
    try:
        if blocks:
            context.load_verify_locations(cadata=b"\n".join(blocks).decode("ascii"))
        else:
            context.load_verify_locations(cadata=ca_pem)  # DER
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"the certificate authority is not a valid certificate: {exc}") from None


def load_client_certificate(context: ssl.SSLContext, *, cert_pem: bytes, key_pem: bytes) -> None:
    """Load an inline certificate and key; calling it again replaces them for new handshakes."""
    with _secret_path(cert_pem) as cert_path, _secret_path(key_pem) as key_path:
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"the client certificate and key cannot be loaded (not PEM, or not a pair): "
                f"{exc.reason or exc.__class__.__name__}"
            ) from None


@contextlib.contextmanager
def _secret_path(data: bytes) -> Iterator[str]:
    """A path OpenSSL can open that holds ``data``, gone when the block ends."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("vk-trio-tls", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="vk-trio-tls-")  # created 0600
    try:
        _write_all(fd, data)
        os.close(fd)
        fd = -1
        yield path
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
